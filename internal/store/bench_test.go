package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"nurture/internal/store"
	"nurture/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.drop != nil {
		if err := bench.drop(); err != nil {
			fmt.Fprintln(os.Stderr, "drop benchmark database:", err)
		}
	}
	os.Exit(code)
}

const benchCampaign = "bench"

var benchAt = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

// bench is the database the benchmarks share, seeded once per process.
var bench struct {
	once sync.Once
	st   *store.Store
	n    int
	drop func() error
	err  error
}

// benchStore returns a store holding NURTURE_BENCH_CUSTOMERS customers
// (default 100000): a third with attributes, a tenth with a delivery of
// the benchmark campaign, last active over the year before benchAt.
func benchStore(b *testing.B) (*store.Store, int) {
	b.Helper()
	bench.once.Do(func() {
		n := 100000
		if v := os.Getenv("NURTURE_BENCH_CUSTOMERS"); v != "" {
			if n, bench.err = strconv.Atoi(v); bench.err != nil {
				return
			}
		}
		bench.n = n
		ctx := context.Background()
		var u string
		if u, bench.drop, bench.err = testenv.NewDatabase(ctx); bench.err != nil {
			return
		}
		if bench.st, bench.err = store.Open(ctx, u, store.Config{}); bench.err != nil {
			return
		}
		bench.err = seed(ctx, bench.st, n)
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.st, bench.n
}

func seed(ctx context.Context, st *store.Store, n int) error {
	start := time.Now()
	attrs, _ := json.Marshal(map[string]any{"plan": "pro", "seats": 3, "tags": []string{"beta"}})
	const batch = 10000
	for lo := 0; lo < n; lo += batch {
		im, err := st.BeginImport(ctx)
		if err != nil {
			return err
		}
		recs := make([]store.CustomerRecord, 0, batch)
		var ds []store.NewDelivery
		for i := lo; i < min(n, lo+batch); i++ {
			r := store.CustomerRecord{
				ID:         fmt.Sprintf("c%08d", i),
				Email:      fmt.Sprintf("customer%d@example.com", i),
				FirstName:  "Customer",
				Timezone:   "Europe/Paris",
				Subscribed: true,
				CreatedAt:  benchAt.Add(-time.Duration(i%365*24+i%24) * time.Hour),
			}
			if i%3 == 0 {
				r.Attributes = attrs
			}
			recs = append(recs, r)
			if i%10 == 0 {
				ds = append(ds, store.NewDelivery{Campaign: benchCampaign, CustomerID: r.ID,
					Occurrence: benchAt.Add(-30 * 24 * time.Hour), Stage: "active", Template: "t", Queue: "default"})
			}
		}
		if _, err := im.Customers(ctx, recs); err != nil {
			return err
		}
		if err := im.Commit(ctx); err != nil {
			return err
		}
		if _, err := st.InsertDeliveries(ctx, ds); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "seeded %d customers in %s\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}

// BenchmarkCandidates streams every candidate of a campaign, as the planner
// does, doing nothing with them.
func BenchmarkCandidates(b *testing.B) {
	st, n := benchStore(b)
	ctx := context.Background()
	rows := 0
	for b.Loop() {
		rows = 0
		err := st.Candidates(ctx, store.CandidateFilter{Campaign: benchCampaign, At: benchAt}, func(c *store.Candidate) error {
			rows++
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if rows != n {
		b.Fatalf("%d candidates, want %d", rows, n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
}

// BenchmarkBareScan runs Candidates' query with plain pgx and scans every
// column without any processing: the floor BenchmarkCandidates is
// compared with.
func BenchmarkBareScan(b *testing.B) {
	st, n := benchStore(b)
	ctx := context.Background()
	sql := st.CandidatesSQL()
	var (
		id, email, firstName, timezone string
		attributes                     []byte
		createdAt, lastActiveAt        time.Time
		ordersCount, sends             int32
		totalSpent                     float64
		firstPurchase, lastPurchase    pgtype.Timestamptz
		lastOccurrence                 pgtype.Timestamptz
	)
	rowsSeen := 0
	for b.Loop() {
		rowsSeen = 0
		rows, err := st.Pool().Query(ctx, sql, benchCampaign, benchAt, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		for rows.Next() {
			if err := rows.Scan(&id, &email, &firstName, &timezone, &createdAt, &attributes,
				&ordersCount, &totalSpent, &firstPurchase, &lastPurchase, &lastActiveAt, &sends, &lastOccurrence); err != nil {
				b.Fatal(err)
			}
			rowsSeen++
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
	}
	if rowsSeen != n {
		b.Fatalf("%d rows, want %d", rowsSeen, n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rowsSeen), "ns/row")
}
