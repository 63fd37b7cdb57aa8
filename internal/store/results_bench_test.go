package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"nurture/internal/store"
	"nurture/internal/testenv"
)

// BenchmarkAttribution measures attribution per 1,000 purchase events
// over 10,000 customers who each got an email a day earlier, against
// reading the same events with a plain query (the floor: attribution
// must at least read them). Both run in the same process on the same
// database; events are imported outside the timer.
func BenchmarkAttribution(b *testing.B) {
	const customers, batch = 10_000, 1_000
	ctx := context.Background()
	st := testenv.Store(b)
	sent := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	var recs []store.CustomerRecord
	var ds []store.NewDelivery
	for i := range customers {
		id := fmt.Sprintf("c%05d", i)
		recs = append(recs, store.CustomerRecord{ID: id, Email: id + "@example.com", Subscribed: true, CreatedAt: sent.AddDate(0, -1, 0)})
		ds = append(ds, store.NewDelivery{Campaign: "winback", CustomerID: id, Occurrence: sent, Stage: "lapsed", Template: "winback", Queue: "default"})
	}
	importCustomers(b, st, recs...)
	if _, err := st.InsertDeliveries(ctx, ds); err != nil {
		b.Fatal(err)
	}
	if _, err := st.Pool().Exec(ctx, `UPDATE deliveries SET status = 'sent', sent_at = $1`, sent); err != nil {
		b.Fatal(err)
	}
	w := store.Windows{By: map[string]time.Duration{"winback": 120 * time.Hour}, Default: 120 * time.Hour}
	next := 0
	purchases := func() {
		b.StopTimer()
		evs := make([]store.EventRecord, batch)
		for i := range evs {
			next++
			amount := float64(next%90 + 10)
			evs[i] = store.EventRecord{ID: fmt.Sprintf("o%07d", next), CustomerID: fmt.Sprintf("c%05d", next%customers), Type: "purchase",
				OccurredAt: sent.Add(24*time.Hour + time.Duration(next)*time.Second), Amount: &amount}
		}
		importEvents(b, st, evs...)
		b.StartTimer()
	}
	b.Run("attribute", func(b *testing.B) {
		for b.Loop() {
			purchases()
			res, err := st.Attribute(ctx, w)
			if err != nil || res.Conversions != batch {
				b.Fatalf("%+v %v", res, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/1k-purchases")
	})
	b.Run("read", func(b *testing.B) {
		var last int64
		if err := st.Pool().QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&last); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			purchases()
			rows, err := st.Pool().Query(ctx, `SELECT seq, customer_id, occurred_at, amount FROM events WHERE seq > $1 ORDER BY seq LIMIT $2`, last, batch)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for rows.Next() {
				var id string
				var at time.Time
				var amount *float64
				if err := rows.Scan(&last, &id, &at, &amount); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if rows.Err() != nil || n != batch {
				b.Fatalf("read %d events: %v", n, rows.Err())
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/1k-purchases")
	})
}
