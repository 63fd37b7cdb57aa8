package tracking_test

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
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
	b.Run("handler", func(b *testing.B) { benchmarkHits(b, false) })
	b.Run("http", func(b *testing.B) { benchmarkHits(b, true) })
}

// benchmarkHits calls the handlers directly, or over HTTP on the loopback
// interface with kept-alive connections (the client's work shares the
// cores with the server's).
func benchmarkHits(b *testing.B, overHTTP bool) {
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
	hit := func(p string) int { return call(h, "GET", p, browser).code }
	if overHTTP {
		srv := httptest.NewServer(h)
		defer srv.Close()
		client := &http.Client{
			Transport:     &http.Transport{MaxIdleConnsPerHost: 64},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		defer client.CloseIdleConnections()
		hit = func(p string) int {
			req, err := http.NewRequest("GET", srv.URL+p, nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("User-Agent", browser)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return 0
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode
		}
		b.SetParallelism(8)
	}
	before := recorded(b, st, ids)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if code := hit(paths[rand.IntN(len(paths))]); code != http.StatusFound {
				b.Errorf("status %d", code)
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
