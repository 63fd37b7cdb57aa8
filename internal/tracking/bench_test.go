package tracking_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"nurture/internal/metrics"
	"nurture/internal/store"
	"nurture/internal/testenv"
	"nurture/internal/tracking"
)

// BenchmarkHits measures clicks answered and recorded per second: the
// handlers with a Recorder writing to the real PostgreSQL, requests from
// every core, over 1000 deliveries; the clock stops once every hit is
// written. hits/s counts hits recorded, not those dropped.
func BenchmarkHits(b *testing.B) {
	ctx := context.Background()
	st := testenv.Store(b)
	ids, sent := sentDelivery(b, st, 1000)
	l := links(b, func() time.Time { return sent })
	now := func() time.Time { return sent.Add(time.Minute) }
	paths := make([]string, len(ids))
	for i, id := range ids {
		paths[i] = path(l.ClickURL(id, "https://shop.example.com/new?utm_source=mail"))
	}
	m := metrics.New()
	log := slog.New(slog.DiscardHandler)
	rec := tracking.NewRecorder(tracking.RecorderConfig{}, st, m, log)
	if err := rec.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer rec.Stop(ctx)
	h := mux(tracking.Handlers(l, rec, now, m, log))
	before := recorded(b, st, ids)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := call(h, "GET", paths[rand.IntN(len(paths))], browser); r.code != http.StatusFound {
				b.Errorf("status %d", r.code)
				return
			}
		}
	})
	if err := rec.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	n := recorded(b, st, ids) - before
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "hits/s")
	b.ReportMetric(float64(b.N-n), "dropped")
}

// recorded is the number of clicks recorded for ids.
func recorded(b *testing.B, st *store.Store, ids []uuid.UUID) int {
	b.Helper()
	n := 0
	for _, id := range ids {
		tr, err := st.DeliveryTracking(context.Background(), id)
		if err != nil {
			b.Fatal(err)
		}
		n += tr.Clicks + tr.MachineClicks
	}
	return n
}
