package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"nurture/internal/api"
	"nurture/internal/content"
	"nurture/internal/planner"
	"nurture/internal/queue"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

// at is the API's clock in these tests: event times are checked against
// it, never against the wall clock.
var at = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

func clock() time.Time { return at }

// post sends body with a content type and returns the status and body.
func post(t *testing.T, url, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, strings.TrimSuffix(string(b), "\n")
}

func counts(t *testing.T, st *store.Store) store.Counts {
	t.Helper()
	n, err := st.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestIngestNeedsToken(t *testing.T) {
	base, st := serveWith(t, api.Config{Now: clock})
	for _, path := range []string{"/api/v1/customers", "/api/v1/events"} {
		for _, auth := range []string{"", "Bearer wrong-token-wrong-token"} {
			code, body := call(t, "POST", base+path, auth, `{"id":"c1","email":"a@example.com"}`)
			if code != 401 || body != `{"error":"a bearer token from API_TOKENS is required"}`+"\n" {
				t.Errorf("POST %s with %q: %d %s", path, auth, code, body)
			}
		}
	}
	if code, _ := call(t, "GET", base+"/api/v1/customers/c1", "", ""); code != 401 {
		t.Errorf("GET customer without token: %d", code)
	}
	if n := counts(t, st); n.Customers != 0 || n.Events != 0 {
		t.Errorf("rows after refused calls: %+v", n)
	}
}

func TestIngestCustomers(t *testing.T) {
	base, st := serveWith(t, api.Config{Now: clock})
	url := base + "/api/v1/customers"
	for _, tt := range []struct {
		name, contentType, body string
		code                    int
		want                    string
		customers               int
	}{
		{"one object", "application/json", `{"id":"c1","email":"ann@example.com","first_name":"Ann"}`, 200, `{"accepted":1,"duplicates":0}`, 1},
		{"the same again", "application/json", `{"id":"c1","email":"ann@example.com","first_name":"Ann"}`, 200, `{"accepted":0,"duplicates":1}`, 1},
		{"an array, all or nothing", "application/json",
			`[{"id":"c2","email":"bo@example.com"},{"id":"c3","email":"Cy <cy@example.com>"},{"email":"dee@example.com","timezone":"Mars/Base"}]`, 422,
			`{"errors":[{"index":1,"field":"email","message":"\"Cy \u003ccy@example.com\u003e\" is not a bare address (want \"cy@example.com\")"},` +
				`{"index":2,"field":"id","message":"missing \"id\""},{"index":2,"field":"timezone","message":"unknown time zone \"Mars/Base\""}]}`, 1},
		{"the same, partial", "application/json",
			`[{"id":"c2","email":"bo@example.com"},{"id":"c3","email":"Cy <cy@example.com>"},{"email":"dee@example.com","timezone":"Mars/Base"}]`, 200,
			`{"accepted":1,"duplicates":0,"errors":[{"index":1,"field":"email","message":"\"Cy \u003ccy@example.com\u003e\" is not a bare address (want \"cy@example.com\")"},` +
				`{"index":2,"field":"id","message":"missing \"id\""},{"index":2,"field":"timezone","message":"unknown time zone \"Mars/Base\""}]}`, 2},
		{"JSON Lines", "application/x-ndjson", "{\"id\":\"c4\",\"email\":\"di@example.com\"}\n\n{\"id\":\"c5\",\"email\":\"ed@example.com\",\"color\":\"red\"}\n", 422,
			`{"errors":[{"index":1,"field":"color","message":"unknown field \"color\""}]}`, 2},
		{"an item that is not an object", "application/json", `[{"id":"c4","email":"di@example.com"},42]`, 422,
			`{"errors":[{"index":1,"field":"","message":"not a JSON object"}]}`, 2},
		{"a syntax error", "application/json", "[{\"id\":\"c4\",\n \"email\":\"di@example.com\",}]", 400,
			`{"error":"malformed JSON at line 2, column 27: invalid character '}' looking for beginning of object key string"}`, 2},
		{"a syntax error in JSON Lines", "application/x-ndjson", "{\"id\":\"c4\",\"email\":\"di@example.com\"}\n{\"id\":\"c5\" \"email\":\"ed@example.com\"}\n", 400,
			`{"error":"malformed JSON on line 2, column 12: invalid character '\"' after object key:value pair"}`, 2},
		{"two objects without JSON Lines", "application/json", "{\"id\":\"c4\",\"email\":\"di@example.com\"}\n{\"id\":\"c5\",\"email\":\"ed@example.com\"}", 400,
			`{"error":"unexpected data after the JSON value at line 2, column 1; send several objects as an array, or as JSON Lines with Content-Type: application/x-ndjson"}`, 2},
		{"a body that ends early", "application/json", `[{"id":"c4","email":"di@example.com"}`, 400,
			`{"error":"malformed JSON: the body ends early, at line 1, column 37"}`, 2},
		{"an empty body", "application/json", ``, 400, `{"error":"the body is empty: want a JSON object or an array of them"}`, 2},
		{"an empty array", "application/json", `[]`, 200, `{"accepted":0,"duplicates":0}`, 2},
		{"over the body limit", "application/json", `{"id":"c9","email":"x@example.com","first_name":"` + strings.Repeat("x", 2000) + `"}`, 413,
			`{"error":"the body is over the limit of 1024 bytes"}`, 2},
	} {
		code, body := post(t, url, tt.contentType, tt.body)
		if strings.Contains(tt.name, "partial") {
			code, body = post(t, url+"?partial=true", tt.contentType, tt.body)
		}
		if code != tt.code || body != tt.want {
			t.Errorf("%s: %d %s\nwant %d %s", tt.name, code, body, tt.code, tt.want)
		}
		if n := counts(t, st); n.Customers != tt.customers {
			t.Errorf("%s: %d customers, want %d", tt.name, n.Customers, tt.customers)
		}
	}
	if code, body := post(t, url+"?partial=maybe", "application/json", `{}`); code != 400 || body != `{"error":"?partial=\"maybe\": want true or false"}` {
		t.Errorf("?partial=maybe: %d %s", code, body)
	}
}

// TestIngestEvents: events are idempotent by id, move the facts exactly
// as the import does, and an opt-out survives an upsert that says
// subscribed.
func TestIngestEvents(t *testing.T) {
	base, st := serveWith(t, api.Config{Now: clock})
	ctx := context.Background()
	if code, body := post(t, base+"/api/v1/customers", "application/json",
		`[{"id":"c1","email":"ann@example.com","created_at":"2026-01-01T00:00:00Z"},{"id":"c2","email":"bo@example.com","created_at":"2026-01-01T00:00:00Z"}]`); code != 200 {
		t.Fatalf("customers: %d %s", code, body)
	}
	events := `{"id":"e1","customer_id":"c1","type":"purchase","occurred_at":"2026-11-20T10:00:00Z","amount":30}
{"id":"e2","customer_id":"c1","type":"purchase","occurred_at":"2026-11-21T10:00:00Z","amount":12.5}
{"id":"e3","customer_id":"c2","type":"cart_abandoned","occurred_at":"2026-11-24T08:00:00Z","properties":{"cart_value":40}}
`
	for i, want := range []string{`{"accepted":3,"duplicates":0}`, `{"accepted":0,"duplicates":3}`} {
		if code, body := post(t, base+"/api/v1/events", "application/x-ndjson", events); code != 200 || body != want {
			t.Errorf("post %d: %d %s, want %s", i+1, code, body, want)
		}
	}
	// One new event among replayed ones, and one too far in the future
	// for the API's clock: partial writes the good one.
	code, body := post(t, base+"/api/v1/events?partial=true", "application/json",
		`[{"id":"e2","customer_id":"c1","type":"purchase","occurred_at":"2026-11-21T10:00:00Z","amount":12.5},`+
			`{"id":"e4","customer_id":"c1","type":"purchase","occurred_at":"2026-11-23T10:00:00Z","amount":7.5},`+
			`{"id":"e5","customer_id":"c1","type":"purchase","occurred_at":"2026-11-26T10:00:00Z","amount":1}]`)
	want := `{"accepted":1,"duplicates":1,"errors":[{"index":2,"field":"occurred_at","message":"\"2026-11-26T10:00:00Z\" is more than 24 hours in the future (the import's clock says 2026-11-24T09:00:00Z)"}]}`
	if code != 200 || body != want {
		t.Errorf("partial: %d %s\nwant %s", code, body, want)
	}
	c1, err := st.Customer(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if c1.OrdersCount != 3 || c1.TotalSpent != 50 || !c1.LastPurchaseAt.Equal(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("c1 facts: %d orders, %.2f spent, last purchase %v", c1.OrdersCount, c1.TotalSpent, c1.LastPurchaseAt)
	}
	if n := counts(t, st); n.Events != 4 {
		t.Errorf("%d events, want 4", n.Events)
	}

	// An opt-out from the person survives an upsert that says subscribed.
	if _, err := st.Unsubscribe(ctx, "c2", "unsubscribe link", "winback"); err != nil {
		t.Fatal(err)
	}
	if code, body := post(t, base+"/api/v1/customers", "application/json", `{"id":"c2","email":"bo@example.com","subscribed":true,"created_at":"2026-01-01T00:00:00Z"}`); code != 200 {
		t.Fatalf("upsert c2: %d %s", code, body)
	}
	if c2, err := st.Customer(ctx, "c2"); err != nil || c2.Subscribed {
		t.Errorf("c2 after an upsert saying subscribed: subscribed %v, %v", c2.Subscribed, err)
	}
}

// TestGetCustomer: the explain view, with stage history and deliveries;
// an unknown id answers 404.
func TestGetCustomer(t *testing.T) {
	c, err := content.Load(testenv.Fixture("campaigns"), testenv.Fixture("templates"))
	if err != nil {
		t.Fatal(err)
	}
	var pl *planner.Planner
	base, st := serveWith(t, api.Config{Now: clock, Explain: func(ctx context.Context, id string, at time.Time) (any, error) {
		return pl.Explain(ctx, c.Rules, id, at)
	}})
	pl = planner.New(st, slog.New(slog.DiscardHandler))
	testenv.ImportFixture(t, st)
	ctx := context.Background()
	if _, err := pl.Sweep(ctx, c.Rules, at); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(testenv.Redis(t))
	defer rdb.Close()
	welcome := c.Rules.Targets()[1]
	if welcome.Campaign.Name != "welcome" {
		t.Fatalf("second campaign is %s", welcome.Campaign.Name)
	}
	if _, err := pl.Tick(ctx, c.Rules, welcome, at, queue.NewClient(rdb, queue.Config{}), planner.TickOptions{}); err != nil {
		t.Fatal(err)
	}
	code, body := call(t, "GET", base+"/api/v1/customers/c1", "Bearer "+token, "")
	if code != 200 {
		t.Fatalf("GET c1: %d %s", code, body)
	}
	var ex struct {
		CustomerID   string `json:"customer_id"`
		At           string `json:"at"`
		Stage        string `json:"stage"`
		Facts        map[string]any
		StageHistory []map[string]any `json:"stage_history"`
		Deliveries   []map[string]any `json:"deliveries"`
		Campaigns    []map[string]any `json:"campaigns"`
	}
	if err := json.Unmarshal([]byte(body), &ex); err != nil {
		t.Fatal(err)
	}
	if ex.CustomerID != "c1" || ex.At != "2026-11-24T09:00:00Z" || ex.Stage != "new" || ex.Facts["email"] != "ann@example.com" {
		t.Errorf("view: %s", body)
	}
	if len(ex.StageHistory) != 1 || ex.StageHistory[0]["to"] != "new" || ex.StageHistory[0]["observed_at"] != "2026-11-24T09:00:00Z" {
		t.Errorf("stage history: %v", ex.StageHistory)
	}
	if len(ex.Deliveries) != 1 || ex.Deliveries[0]["campaign"] != "welcome" || ex.Deliveries[0]["status"] != "queued" {
		t.Errorf("deliveries: %v", ex.Deliveries)
	}
	if len(ex.Campaigns) != 2 {
		t.Errorf("campaigns: %v", ex.Campaigns)
	}
	if code, body := call(t, "GET", base+"/api/v1/customers/nobody", "Bearer "+token, ""); code != 404 || body != `{"error":"no customer with id \"nobody\""}`+"\n" {
		t.Errorf("GET nobody: %d %s", code, body)
	}
	// Once erased, the person is gone from the view too.
	if code, body := call(t, "DELETE", base+"/api/v1/customers/c1", "Bearer "+token, ""); code != 200 {
		t.Fatalf("DELETE c1: %d %s", code, body)
	}
	if code, body := call(t, "GET", base+"/api/v1/customers/c1", "Bearer "+token, ""); code != 404 || body != `{"error":"no customer with id \"c1\""}`+"\n" {
		t.Errorf("GET c1 after DELETE: %d %s", code, body)
	}
}
