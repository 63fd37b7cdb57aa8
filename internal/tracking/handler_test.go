package tracking_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"nurture/internal/metrics"
	"nurture/internal/store"
	"nurture/internal/testenv"
	"nurture/internal/tracking"
)

const browser = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"

// sentDelivery makes n deliveries of campaign winback, sent, and returns
// their ids and the time the store recorded as their send.
func sentDelivery(t testing.TB, st *store.Store, n int) ([]uuid.UUID, time.Time) {
	t.Helper()
	ctx := context.Background()
	occ := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	var nds []store.NewDelivery
	for i := range n {
		nds = append(nds, store.NewDelivery{Campaign: "winback", CustomerID: fmt.Sprintf("c%d", i),
			Occurrence: occ, Stage: "lapsed", Template: "winback", Queue: "default"})
	}
	refs, err := st.InsertDeliveries(ctx, nds)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(refs))
	for i, r := range refs {
		ids[i] = r.ID
	}
	claims, err := st.Claim(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	outs := make([]store.Outcome, len(claims))
	for i, c := range claims {
		outs[i] = store.Outcome{ID: c.ID, Status: store.StatusSent, Attempt: c.Attempts}
	}
	if stale, err := st.Record(ctx, outs); err != nil || len(stale) > 0 {
		t.Fatalf("record sent: %v, stale %v", err, stale)
	}
	d, err := st.Delivery(ctx, ids[0])
	if err != nil || d.SentAt == nil {
		t.Fatalf("delivery %s: %+v, %v", ids[0], d, err)
	}
	out := make([]uuid.UUID, len(ids))
	for i, id := range ids {
		out[i] = uuid.MustParse(id)
	}
	return out, *d.SentAt
}

// clock is a settable clock.
type clock struct{ t atomic.Pointer[time.Time] }

func (c *clock) set(t time.Time) { c.t.Store(&t) }
func (c *clock) now() time.Time  { return *c.t.Load() }

func mux(h map[string]http.Handler) *http.ServeMux {
	m := http.NewServeMux()
	for p, h := range h {
		m.Handle(p, h)
	}
	return m
}

type response struct {
	code     int
	header   http.Header
	body     string
	location string
}

func call(h http.Handler, method, target, ua string) response {
	req := httptest.NewRequest(method, target, nil)
	req.Header.Set("User-Agent", ua)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	b, _ := io.ReadAll(w.Result().Body)
	return response{code: w.Code, header: w.Header(), body: string(b), location: w.Header().Get("Location")}
}

func path(u string) string { return strings.TrimPrefix(u, base) }

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	return call(m.Handler(), "GET", "/metrics", "").body
}

func wantMetrics(t *testing.T, m *metrics.Metrics, lines ...string) {
	t.Helper()
	got := scrape(t, m)
	for _, l := range lines {
		if !strings.Contains(got, "\n"+l+"\n") {
			t.Errorf("metrics lack %q", l)
		}
	}
}

// TestHandlers: the pixel and the redirect, answered whatever the token's
// age; machine-made hits (within 2 s of the send, a scanner) recorded
// apart; forged and altered tokens answered 400 and never redirected.
func TestHandlers(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	ids, sent := sentDelivery(t, st, 1)
	id := ids[0]
	var clk clock
	clk.set(sent)
	l := links(t, clk.now)
	target := "https://shop.example.com/new?utm_source=mail&utm_medium=email#top"
	open, click := path(l.OpenURL(id)), path(l.ClickURL(id, target))

	m := metrics.New()
	rec := tracking.NewRecorder(tracking.RecorderConfig{}, st, m, slog.New(slog.DiscardHandler))
	if err := rec.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer rec.Stop(ctx)
	h := mux(tracking.Handlers(l, rec, clk.now, m, slog.New(slog.DiscardHandler)))

	step := func(after time.Duration, method, target, ua string) response {
		clk.set(sent.Add(after))
		return call(h, method, target, ua)
	}
	// The pixel: a GIF that no cache keeps.
	r := step(time.Second, "GET", open, browser) // within 2 s: machine
	if r.code != 200 || r.header.Get("Content-Type") != "image/gif" || !strings.HasPrefix(r.body, "GIF89a") ||
		!strings.Contains(r.header.Get("Cache-Control"), "no-store") || r.header.Get("Pragma") != "no-cache" {
		t.Errorf("pixel: %d %v %q", r.code, r.header, r.body)
	}
	step(3*time.Second, "GET", open, browser)                           // human
	step(5*time.Second, "GET", open, "Mimecast-Url-Protect/1.0")        // scanner: machine
	step(6*time.Second, "HEAD", open, browser)                          // not a view: not recorded
	if r := step(7*time.Second, "POST", open, browser); r.code != 405 { // nothing to post
		t.Errorf("POST pixel: %d", r.code)
	}
	r = step(10*time.Second, "GET", click, browser)
	if r.code != http.StatusFound || r.location != target {
		t.Errorf("click: %d to %q, want 302 to %q", r.code, r.location, target)
	}
	// Forged or altered: 400, a plain page, no redirect.
	tok := strings.TrimPrefix(click, tracking.ClickPath)
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	other := path(l.ClickURL(id, "https://other.example.com/"))
	for _, bad := range []string{
		tracking.ClickPath + flip(tok, len(tok)-3), // the target altered
		tracking.ClickPath + flip(tok, 10),         // the delivery altered
		tracking.ClickPath + "bm90LWEtdG9rZW4",
		strings.Replace(open, tracking.OpenPath, tracking.ClickPath, 1), // an open token as a click
	} {
		r := step(11*time.Second, "GET", bad, browser)
		if r.code != 400 || r.location != "" || r.body != "This link is not valid.\n" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
			t.Errorf("%s: %d %q %q", bad, r.code, r.location, r.body)
		}
	}
	if r := step(11*time.Second, "GET", other, browser); r.code != http.StatusFound || r.location != "https://other.example.com/" {
		t.Errorf("another link of the email: %d %q", r.code, r.location)
	}
	// A year on, the link still leads where it did, uncounted.
	r = step(tracking.DefaultTTL+time.Hour, "GET", click, browser)
	if r.code != http.StatusFound || r.location != target {
		t.Errorf("expired click: %d to %q", r.code, r.location)
	}
	if r := step(tracking.DefaultTTL+time.Hour, "GET", open, browser); r.code != 200 {
		t.Errorf("expired open: %d", r.code)
	}

	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	tr, err := st.DeliveryTracking(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Opens != 1 || !tr.FirstOpenedAt.Equal(sent.Add(3*time.Second)) || !tr.LastOpenedAt.Equal(sent.Add(3*time.Second)) ||
		tr.MachineOpens != 2 || tr.Clicks != 2 || !tr.FirstClickedAt.Equal(sent.Add(10*time.Second)) ||
		!tr.LastClickedAt.Equal(sent.Add(11*time.Second)) || tr.MachineClicks != 0 {
		t.Errorf("recorded: %+v", tr)
	}
	if len(tr.Links) != 2 || tr.Links[0].URL != "https://other.example.com/" || tr.Links[1].URL != target || tr.Links[1].Clicks != 1 {
		t.Errorf("links: %+v", tr.Links)
	}
	wantMetrics(t, m,
		`nurture_tracking_hits_total{campaign="winback",kind="open",source="human"} 1`,
		`nurture_tracking_hits_total{campaign="winback",kind="open",source="machine"} 2`,
		`nurture_tracking_hits_total{campaign="winback",kind="click",source="human"} 2`,
		`nurture_tracking_rejected_total{kind="click",reason="invalid"} 4`,
		`nurture_tracking_rejected_total{kind="click",reason="expired"} 1`,
		`nurture_tracking_rejected_total{kind="open",reason="expired"} 1`)
}

// TestHandlersWithoutTheDatabase: with PostgreSQL gone, or the recorder's
// backlog full, the pixel and the redirect are still answered; the hits
// lost are counted.
func TestHandlersWithoutTheDatabase(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	ids, sent := sentDelivery(t, st, 1)
	var clk clock
	clk.set(sent.Add(time.Minute))
	l := links(t, clk.now)
	target := "https://shop.example.com/"
	log := slog.New(slog.DiscardHandler)

	st.Close() // the database is gone
	m := metrics.New()
	rec := tracking.NewRecorder(tracking.RecorderConfig{}, st, m, log)
	if err := rec.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer rec.Stop(ctx)
	h := mux(tracking.Handlers(l, rec, clk.now, m, log))
	if r := call(h, "GET", path(l.ClickURL(ids[0], target)), browser); r.code != http.StatusFound || r.location != target {
		t.Errorf("click with the database down: %d to %q", r.code, r.location)
	}
	if r := call(h, "GET", path(l.OpenURL(ids[0])), browser); r.code != 200 {
		t.Errorf("open with the database down: %d", r.code)
	}
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	wantMetrics(t, m, `nurture_tracking_unrecorded_total{reason="database"} 2`)

	// A recorder that does not keep up: a backlog of one, never written.
	m = metrics.New()
	rec = tracking.NewRecorder(tracking.RecorderConfig{Backlog: 1}, st, m, log)
	h = mux(tracking.Handlers(l, rec, clk.now, m, log))
	for range 3 {
		if r := call(h, "GET", path(l.ClickURL(ids[0], target)), browser); r.code != http.StatusFound || r.location != target {
			t.Errorf("click with the backlog full: %d to %q", r.code, r.location)
		}
	}
	wantMetrics(t, m, `nurture_tracking_unrecorded_total{reason="backlog"} 2`)
}
