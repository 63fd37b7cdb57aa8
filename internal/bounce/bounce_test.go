package bounce_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"nurture/internal/bounce"
	"nurture/internal/httpserver"
	"nurture/internal/metrics"
	"nurture/internal/store"
	"nurture/internal/testenv"
	"nurture/internal/unsubscribe"
)

const (
	token  = "0123456789abcdef-webhook-token"
	secret = "0123456789abcdef-secret"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// fileID is the delivery id that the files in testdata give delivery n of
// the fixtures, in the Message-IDs they quote; readFile puts the id the
// delivery got in its place.
func fileID(n int) string { return fmt.Sprintf("4b1f0c9e-1d2a-4c55-9a51-0c2f3b7d1a%02d", n) }

// msgID is the Message-ID nurture gave the email of delivery n.
func (f *fixture) msgID(n int) string { return "<" + f.deliveries[n] + "@mail.example.com>" }

// readFile is the file name of testdata, with the fixtures' delivery ids.
func (f *fixture) readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	for n, id := range f.deliveries {
		b = bytes.ReplaceAll(b, []byte(fileID(n)), []byte(id))
	}
	return b
}

// fixture is a store holding the customers and sent deliveries the files
// in testdata are about, with a clock the test sets.
type fixture struct {
	st  *store.Store
	now time.Time
	// deliveries are the delivery ids by fixture number (1 to 7).
	deliveries map[int]string
	rec        *bounce.Recorder
	metrics    *metrics.Metrics
}

var people = []struct {
	id, email, campaign string
}{
	1: {"c1", "ann@example.net", "winback"},
	2: {"c2", "bob@contoso.example", "welcome-series"},
	3: {"c3", "carol@example.org", "cart-reminder"},
	4: {"c4", "dave@example.com", "winback"},
	5: {"c5", "erin@example.org", "thank-you"},
	6: {"c6", "frank@example.com", "winback"},
	7: {"c7", "grace@example.com", "review-request"},
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{now: ts("2026-07-05T00:00:00Z"), deliveries: map[int]string{}}
	f.st = testenv.StoreConfig(t, store.Config{Now: func() time.Time { return f.now }})
	im, err := f.st.BeginImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Rollback(ctx)
	var recs []store.CustomerRecord
	for _, p := range people[1:] {
		recs = append(recs, store.CustomerRecord{ID: p.id, Email: p.email, Subscribed: true, CreatedAt: ts("2026-01-01T00:00:00Z")})
	}
	if _, err := im.Customers(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := im.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for n, p := range people {
		if n == 0 {
			continue
		}
		refs, err := f.st.InsertDeliveries(ctx, []store.NewDelivery{{Campaign: p.campaign, CustomerID: p.id, Occurrence: ts("2026-06-30T09:00:00Z"),
			Stage: "active", Template: p.campaign, Queue: "default"}})
		if err != nil {
			t.Fatal(err)
		}
		id := refs[0].ID
		f.deliveries[n] = id
		if _, err := f.st.Claim(ctx, []string{id}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.st.Record(ctx, []store.Outcome{{ID: id, Status: store.StatusSent, MessageID: f.msgID(n)}}); err != nil {
			t.Fatal(err)
		}
	}
	f.metrics = metrics.New()
	f.rec = bounce.NewRecorder(f.st, func() store.SoftBounceLimit { return store.SoftBounceLimit{Count: 3, Per: 720 * time.Hour} }, f.metrics,
		slog.New(slog.DiscardHandler))
	return f
}

func (f *fixture) importer(t *testing.T) *bounce.Importer {
	t.Helper()
	tokens, err := unsubscribe.NewTokens(secret, 0, func() time.Time { return f.now })
	if err != nil {
		t.Fatal(err)
	}
	return bounce.NewImporter(f.rec, f.st, bounce.ImporterConfig{Tokens: tokens, Now: func() time.Time { return f.now }}, slog.New(slog.DiscardHandler))
}

func (f *fixture) importFile(t *testing.T, name string) bounce.Summary {
	t.Helper()
	var sum bounce.Summary
	if err := f.importer(t).ImportFile(context.Background(), name, bytes.NewReader(f.readFile(t, name)), &sum); err != nil {
		t.Fatal(err)
	}
	return sum
}

func (f *fixture) suppressions(t *testing.T) map[string]string {
	t.Helper()
	list, err := f.st.Suppressions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, sp := range list {
		out[sp.Email] = sp.Reason + "/" + sp.Source
	}
	return out
}

// marks returns, by fixture number, what each delivery records of its
// bounces: "hard@TIME", "soft@TIME", "complaint@TIME".
func (f *fixture) marks(t *testing.T) map[int]string {
	t.Helper()
	list, err := f.st.DeliveryBounces(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]int{}
	for n, id := range f.deliveries {
		byID[id] = n
	}
	out := map[int]string{}
	for _, d := range list {
		var parts []string
		if d.Bounce != "" {
			parts = append(parts, d.Bounce+"@"+d.BouncedAt.Format(time.RFC3339))
		}
		if d.ComplainedAt != nil {
			parts = append(parts, "complaint@"+d.ComplainedAt.Format(time.RFC3339))
		}
		out[byID[d.DeliveryID]] = strings.Join(parts, " ")
	}
	return out
}

// counters returns the bounce metrics' samples, as "name{labels} value".
func (f *fixture) counters(t *testing.T) []string {
	t.Helper()
	rec := httptest.NewRecorder()
	f.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	var out []string
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "nurture_bounce") {
			out = append(out, line)
		}
	}
	return out
}

func (f *fixture) consent(t *testing.T, id string) []store.ConsentChange {
	t.Helper()
	h, err := f.st.ConsentHistory(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (f *fixture) bounceCount(t *testing.T) int {
	t.Helper()
	rows, err := f.st.Bounces(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(rows)
}

func TestImportPostfixDSN(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	sum := f.importFile(t, "dsn-postfix.eml")
	if want := (bounce.Summary{Messages: 1, Hard: 1}); !reflect.DeepEqual(sum, want) {
		t.Fatalf("summary %+v, want %+v", sum, want)
	}
	if got, want := f.suppressions(t), map[string]string{"ann@example.net": "bounce/dsn"}; !reflect.DeepEqual(got, want) {
		t.Errorf("suppressions %v, want %v", got, want)
	}
	// The recipient's Last-Attempt-Date is absent: the report's Arrival-Date.
	if got, want := f.marks(t), map[int]string{1: "hard@2026-06-30T10:15:01Z"}; !reflect.DeepEqual(got, want) {
		t.Errorf("deliveries %v, want %v", got, want)
	}
	rows, err := f.st.Bounces(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Reason != "5.1.1 smtp; 550 5.1.1 <ann@example.net>: Recipient address rejected: User unknown in virtual mailbox table" ||
		rows[0].MessageID != f.msgID(1) || rows[0].DeliveryID != f.deliveries[1] || rows[0].Source != "dsn" {
		t.Errorf("bounce rows %+v", rows)
	}
	// The same report again changes nothing.
	if sum := f.importFile(t, "dsn-postfix.eml"); sum.Duplicates != 1 || sum.Hard != 0 {
		t.Errorf("second import: %+v, want one duplicate", sum)
	}
	if n := f.bounceCount(t); n != 1 {
		t.Errorf("%d bounce rows after a second import, want 1", n)
	}
}

func TestImportExchangeDSN(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	sum := f.importFile(t, "dsn-exchange.eml")
	if want := (bounce.Summary{Messages: 1, Hard: 1}); !reflect.DeepEqual(sum, want) {
		t.Fatalf("summary %+v, want %+v", sum, want)
	}
	if got, want := f.suppressions(t), map[string]string{"bob@contoso.example": "bounce/dsn"}; !reflect.DeepEqual(got, want) {
		t.Errorf("suppressions %v, want %v", got, want)
	}
	if got, want := f.marks(t), map[int]string{2: "hard@2026-07-01T08:02:11Z"}; !reflect.DeepEqual(got, want) {
		t.Errorf("deliveries %v, want %v", got, want)
	}
}

func TestImportMbox(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	sum := f.importFile(t, "bounces.mbox")
	want := bounce.Summary{Messages: 4, Hard: 1, Soft: 1, Unsubscribed: 1, Problems: []bounce.Problem{{File: "bounces.mbox", Index: 2, Line: 61,
		Why: `neither a delivery status notification nor an unsubscribe request (Content-Type text/plain, Subject "Out of office: Your cart is waiting")`}}}
	if !reflect.DeepEqual(sum, want) {
		t.Fatalf("summary\n got %+v\nwant %+v", sum, want)
	}
	if got, want := sum.Problems[0].String(), `bounces.mbox: message 2 (line 61): neither a delivery status notification nor an unsubscribe request (Content-Type text/plain, Subject "Out of office: Your cart is waiting")`; got != want {
		t.Errorf("problem %q, want %q", got, want)
	}
	// Carol's mailbox is full: one soft bounce, not suppressed yet.
	if got, want := f.suppressions(t), map[string]string{"erin@example.org": "bounce/dsn"}; !reflect.DeepEqual(got, want) {
		t.Errorf("suppressions %v, want %v", got, want)
	}
	if got, want := f.marks(t), map[int]string{3: "soft@2026-07-02T01:59:58Z", 5: "hard@2026-07-02T11:45:08Z"}; !reflect.DeepEqual(got, want) {
		t.Errorf("deliveries %v, want %v", got, want)
	}
	// Dave's mailto request: unsubscribed like the one-click POST, with
	// the campaign of the token.
	if got, want := f.consent(t, "c4"), []store.ConsentChange{{Subscribed: false, Source: "mailto", Campaign: "winback", ChangedAt: f.now}}; !reflect.DeepEqual(got, want) {
		t.Errorf("consent of c4 %+v, want %+v", got, want)
	}
	// Again: nothing new.
	again := f.importFile(t, "bounces.mbox")
	want = bounce.Summary{Messages: 4, Duplicates: 2, AlreadyUnsubscribed: 1, Problems: want.Problems}
	if !reflect.DeepEqual(again, want) {
		t.Errorf("second import\n got %+v\nwant %+v", again, want)
	}
	if n := f.bounceCount(t); n != 2 {
		t.Errorf("%d bounce rows after a second import, want 2", n)
	}
	if got := f.consent(t, "c4"); len(got) != 1 {
		t.Errorf("consent of c4 after a second import: %+v", got)
	}
}

func TestImportMailtoProblems(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tokens, err := unsubscribe.NewTokens(secret, 48*time.Hour, func() time.Time { return f.now })
	if err != nil {
		t.Fatal(err)
	}
	msg := func(subject string) string {
		return "From: someone@example.com\r\nTo: unsubscribe@mail.example.com\r\nSubject: " + subject + "\r\n\r\nbody\r\n"
	}
	old := f.now
	f.now = old.Add(-72 * time.Hour)
	expired := tokens.Token("c1", "winback")
	f.now = old
	other, err := unsubscribe.NewTokens(secret+"!", 0, func() time.Time { return f.now })
	if err != nil {
		t.Fatal(err)
	}
	im := bounce.NewImporter(f.rec, f.st, bounce.ImporterConfig{Tokens: tokens, Now: func() time.Time { return f.now }}, slog.New(slog.DiscardHandler))
	var sum bounce.Summary
	for i, subject := range []string{
		"unsubscribe-" + expired,
		"unsubscribe-" + other.Token("c1", "winback"),
		"unsubscribe-" + tokens.Token("nobody", "winback"),
		"UNSUBSCRIBE-" + tokens.Token("c2", "welcome-series"),
	} {
		if err := im.ImportFile(context.Background(), fmt.Sprintf("m%d.eml", i), strings.NewReader(msg(subject)), &sum); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, p := range sum.Problems {
		got = append(got, p.String())
	}
	want := []string{
		"m0.eml: message 1 (line 1): an unsubscribe request whose token has expired",
		"m1.eml: message 1 (line 1): an unsubscribe request whose token is not valid",
		`m2.eml: message 1 (line 1): an unsubscribe request for customer "nobody", who does not exist (any more)`,
	}
	if sum.Unsubscribed != 1 || !reflect.DeepEqual(got, want) {
		t.Errorf("problems\n got %q\nwant %q\n(%+v)", got, want, sum)
	}
	if got := f.consent(t, "c1"); len(got) != 0 {
		t.Errorf("c1 unsubscribed by a refused request: %+v", got)
	}
	if got, want := f.consent(t, "c2"), []store.ConsentChange{{Subscribed: false, Source: "mailto", Campaign: "welcome-series", ChangedAt: f.now}}; !reflect.DeepEqual(got, want) {
		t.Errorf("consent of c2 %+v, want %+v", got, want)
	}
	// Without SECRET, a request is reported, not processed.
	noSecret := bounce.NewImporter(f.rec, f.st, bounce.ImporterConfig{}, slog.New(slog.DiscardHandler))
	var sum2 bounce.Summary
	if err := noSecret.ImportFile(context.Background(), "x.eml", strings.NewReader(msg("unsubscribe-"+expired)), &sum2); err != nil {
		t.Fatal(err)
	}
	if len(sum2.Problems) != 1 || sum2.Problems[0].Why != "an unsubscribe request, but SECRET is not set to check its token" {
		t.Errorf("without SECRET: %+v", sum2)
	}
}

// serve runs the webhook over the fixture's store.
func (f *fixture) serve(t *testing.T, cfg bounce.HandlerConfig) string {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return f.now }
	}
	srv := httptest.NewServer(bounce.Handler(f.rec, cfg, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	return srv.URL + bounce.Path
}

func post(t *testing.T, url, auth string, header map[string]string, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestWebhookAuth(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	url := f.serve(t, bounce.HandlerConfig{Tokens: []string{"another-token-0123456789", token}})
	body := `{"type":"hard","email":"ann@example.net"}`
	for _, auth := range []string{"", "Bearer wrong-token-wrong-token", "Basic " + token, token} {
		if code, got := post(t, url, auth, nil, body); code != 401 || got != `{"error":"a bearer token from WEBHOOK_TOKENS is required"}`+"\n" {
			t.Errorf("auth %q: %d %s", auth, code, got)
		}
	}
	if got := f.suppressions(t); len(got) != 0 {
		t.Fatalf("refused requests suppressed %v", got)
	}
	if code, got := post(t, url, "Bearer "+token, nil, body); code != 200 || got != `{"accepted":1,"duplicates":0}`+"\n" {
		t.Errorf("right token: %d %s", code, got)
	}
	// Basic auth with the token as password: how an SNS subscription URL
	// carries it.
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"type":"soft","email":"bob@contoso.example"}`))
	req.SetBasicAuth("sns", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("basic auth with the token: %d", resp.StatusCode)
	}
	if got, want := f.suppressions(t), map[string]string{"ann@example.net": "bounce/webhook"}; !reflect.DeepEqual(got, want) {
		t.Errorf("suppressions %v, want %v", got, want)
	}
	// Without tokens the webhook is closed.
	closed := f.serve(t, bounce.HandlerConfig{})
	if code, got := post(t, closed, "Bearer "+token, nil, body); code != 401 || got != `{"error":"the webhook is closed: set WEBHOOK_TOKENS to open it"}`+"\n" {
		t.Errorf("closed: %d %s", code, got)
	}
	want := []string{
		`nurture_bounce_notifications_rejected_total{reason="unauthorized",source="webhook"} 5`,
		`nurture_bounces_total{kind="hard",source="webhook"} 1`,
		`nurture_bounces_total{kind="soft",source="webhook"} 1`,
	}
	if got := f.counters(t); !reflect.DeepEqual(got, want) {
		t.Errorf("metrics\n got %q\nwant %q", got, want)
	}
}

func TestWebhookInvalid(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	url := f.serve(t, bounce.HandlerConfig{Tokens: []string{token}})
	for _, tt := range []struct {
		body string
		code int
		want string
	}{
		{``, 400, "the body is empty: want a JSON object or an array of them"},
		{`{"type":"hard",`, 400, "malformed JSON: the body ends early"},
		{`{"type":"hard" "email":"a@b.c"}`, 400, `malformed JSON at byte 16: invalid character '"' after object key:value pair`},
		{`{"type":"hard","email":"a@b.c","colour":1}`, 400, `malformed JSON: unknown field "colour"`},
		{`{"type":"hard","email":"a@b.c","reason":5}`, 400, "reason: want string, not JSON number (at byte 41)"},
		{`{"type":"hard","email":"a@b.c"} {}`, 400, "unexpected data after the JSON value, at byte 33"},
		{`[]`, 422, "the array is empty: nothing to record"},
		{`{"email":"a@b.c"}`, 422, "type: required: hard, soft or complaint"},
		{`{"type":"bounce","email":"a@b.c"}`, 422, `type: "bounce" is not hard, soft or complaint`},
		{`{"type":"hard"}`, 422, "email: required: the recipient's address"},
		{`{"type":"hard","email":"Ann <a@b.c>"}`, 422, `email: "Ann <a@b.c>" is not a bare email address`},
		{`{"type":"hard","email":"a@b.c","message_id":"nope"}`, 422, `message_id: "nope" is not a Message-ID such as <id@example.com>`},
		{`{"type":"hard","email":"a@b.c","occurred_at":"yesterday"}`, 422, `occurred_at: "yesterday" is not an RFC 3339 time such as 2026-11-24T09:00:00Z`},
		{`[{"type":"hard","email":"a@b.c"},{"type":"soft","email":"x"}]`, 422, `item 1: email: "x" is not a bare email address`},
	} {
		code, got := post(t, url, "Bearer "+token, nil, tt.body)
		if want := fmt.Sprintf("{\"error\":%q}\n", tt.want); code != tt.code || got != want {
			t.Errorf("%s:\n got %d %s\nwant %d %s", tt.body, code, got, tt.code, want)
		}
	}
	// All or nothing: the valid first item of a refused array is not kept.
	if n := f.bounceCount(t); n != 0 {
		t.Errorf("%d bounces recorded from invalid requests", n)
	}
}

func TestWebhookRecordsAndIsIdempotent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	url := f.serve(t, bounce.HandlerConfig{Tokens: []string{token}})
	body := `[{"type":"complaint","email":"Grace@Example.com","message_id":"` + f.msgID(7) + `","occurred_at":"2026-07-04T08:00:00Z","reason":"abuse"},
	          {"type":"soft","email":"carol@example.org","message_id":"` + strings.Trim(f.msgID(3), "<>") + `"}]` // without its angle brackets
	if code, got := post(t, url, "Bearer "+token, nil, body); code != 200 || got != `{"accepted":2,"duplicates":0}`+"\n" {
		t.Fatalf("post: %d %s", code, got)
	}
	// Carol's soft bounce had no occurred_at: the time received.
	if got, want := f.marks(t), map[int]string{7: "complaint@2026-07-04T08:00:00Z", 3: "soft@2026-07-05T00:00:00Z"}; !reflect.DeepEqual(got, want) {
		t.Errorf("deliveries %v, want %v", got, want)
	}
	if got, want := f.suppressions(t), map[string]string{"grace@example.com": "complaint/webhook"}; !reflect.DeepEqual(got, want) {
		t.Errorf("suppressions %v, want %v", got, want)
	}
	if got, want := f.consent(t, "c7"), []store.ConsentChange{{Subscribed: false, Source: "complaint", Campaign: "review-request", ChangedAt: f.now}}; !reflect.DeepEqual(got, want) {
		t.Errorf("consent of c7 %+v, want %+v", got, want)
	}
	// The same notices again: the complaint is a duplicate; the soft bounce
	// without occurred_at is dated anew, so it is another bounce.
	f.now = f.now.Add(time.Minute)
	if code, got := post(t, url, "Bearer "+token, nil, body); code != 200 || got != `{"accepted":1,"duplicates":1}`+"\n" {
		t.Fatalf("post again: %d %s", code, got)
	}
	if n := f.bounceCount(t); n != 3 {
		t.Errorf("%d bounce rows, want 3", n)
	}
}

func TestSoftBounceLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	url := f.serve(t, bounce.HandlerConfig{Tokens: []string{token}})
	soft := func(at string) {
		t.Helper()
		if code, got := post(t, url, "Bearer "+token, nil, `{"type":"soft","email":"carol@example.org","occurred_at":"`+at+`"}`); code != 200 {
			t.Fatalf("post: %d %s", code, got)
		}
	}
	soft("2026-06-04T23:59:59Z") // 30 days and 1s before now: outside 720h
	soft("2026-06-20T00:00:00Z")
	soft("2026-07-04T00:00:00Z")
	if got := f.suppressions(t); len(got) != 0 {
		t.Fatalf("two soft bounces within 720h suppressed: %v", got)
	}
	soft("2026-07-04T12:00:00Z")
	if got, want := f.suppressions(t), map[string]string{"carol@example.org": "bounce/webhook"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after three: suppressions %v, want %v", got, want)
	}
}

func TestWebhookBodyLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rdb := redis.NewClient(testenv.Redis(t))
	t.Cleanup(func() { rdb.Close() })
	log := slog.New(slog.DiscardHandler)
	s, err := httpserver.New(httpserver.Config{Addr: "127.0.0.1:0", MaxBody: 1024},
		httpserver.Deps{Store: f.st, Redis: rdb, Metrics: http.NotFoundHandler(),
			Webhook: bounce.Handler(f.rec, bounce.HandlerConfig{Tokens: []string{token}}, log)}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Stop(ctx)
	})
	url := "http://" + s.Addr() + httpserver.WebhookPath
	big := `{"type":"hard","email":"ann@example.net","reason":"` + strings.Repeat("x", 1024) + `"}`
	if code, got := post(t, url, "Bearer "+token, nil, big); code != 413 || got != `{"error":"the body is over the limit of 1024 bytes"}`+"\n" {
		t.Errorf("over the limit: %d %s", code, got)
	}
	if code, got := post(t, url, "Bearer "+token, nil, `{"type":"hard","email":"ann@example.net"}`); code != 200 || got != `{"accepted":1,"duplicates":0}`+"\n" {
		t.Errorf("through the server: %d %s", code, got)
	}
	if code, got := post(t, url, "", nil, `{"type":"hard","email":"ann@example.net"}`); code != 401 {
		t.Errorf("without a token through the server: %d %s", code, got)
	}
}
