package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"nurture/internal/api"
	"nurture/internal/httpserver"
	"nurture/internal/importer"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

const token = "0123456789abcdef-api-token"

// serve runs the HTTP role with the API over a fresh store, and returns
// its base URL and the store.
func serve(t *testing.T) (string, *store.Store) {
	t.Helper()
	return serveWith(t, api.Config{})
}

// serveWith is serve with the API configured by cfg.
func serveWith(t *testing.T, cfg api.Config) (string, *store.Store) {
	t.Helper()
	st := testenv.Store(t)
	rdb := redis.NewClient(testenv.Redis(t))
	t.Cleanup(func() { rdb.Close() })
	log := slog.New(slog.DiscardHandler)
	s, err := httpserver.New(httpserver.Config{Addr: "127.0.0.1:0", APITokens: []string{"another-token-of-16+", token}, MaxBody: 1024},
		httpserver.Deps{Store: st, Redis: rdb, Metrics: http.NotFoundHandler(), API: api.Handler(st, cfg, log)}, log)
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
	return "http://" + s.Addr(), st
}

// call makes one request and returns the status and the body.
func call(t *testing.T, method, url, auth, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAPIAuth(t *testing.T) {
	base, _ := serve(t)
	for _, auth := range []string{"", "Bearer wrong-token-wrong-token", "Basic " + token, token} {
		if code, body := call(t, "GET", base+"/api/v1/suppressions", auth, ""); code != 401 || body != `{"error":"a bearer token from API_TOKENS is required"}`+"\n" {
			t.Errorf("auth %q: %d %s", auth, code, body)
		}
	}
	if code, _ := call(t, "GET", base+"/api/v1/suppressions", "Bearer "+token, ""); code != 200 {
		t.Errorf("right token: %d", code)
	}
	if code, body := call(t, "GET", base+"/api/v1/nothing", "Bearer "+token, ""); code != 404 || body != `{"error":"no such API call: GET /api/v1/nothing"}`+"\n" {
		t.Errorf("unknown call: %d %s", code, body)
	}
}

func TestSuppressionsAPI(t *testing.T) {
	base, _ := serve(t)
	auth := "Bearer " + token
	url := base + "/api/v1/suppressions"
	for _, tt := range []struct {
		body string
		code int
		want string
	}{
		{`{"email":"Bo@Example.com","reason":"bounce","source":"ses"}`, 200, `{"accepted":1}`},
		{`[{"email":"ann@example.com","reason":"complaint"},{"email":"cy@example.com","reason":"manual"}]`, 200, `{"accepted":2}`},
		// All or nothing: one bad item writes nothing.
		{`[{"email":"dee@example.com","reason":"bounce"},{"email":"Dee <dee@example.com>","reason":""}]`, 422,
			`{"errors":[{"index":1,"field":"email","message":"\"Dee \u003cdee@example.com\u003e\" is not a bare email address"},{"index":1,"field":"reason","message":"required: why the address must not be emailed (bounce, complaint, ...)"}]}`},
		{`{"email":"x@example.com","reason":"bounce"`, 400, `{"error":"malformed JSON: the body ends early"}`},
		{`{"email":"x@example.com" "reason":"bounce"}`, 400, `{"error":"malformed JSON at byte 26: invalid character '\"' after object key:value pair"}`},
		{`{"email":"x@example.com","why":"bounce"}`, 400, `{"error":"malformed JSON: json: unknown field \"why\""}`},
		{`{"email":"x@example.com","reason":"` + strings.Repeat("x", 2000) + `"}`, 413, `{"error":"the body is over the limit of 1024 bytes"}`},
		{`{"email":"x@example.com","reason":"bounce"}}`, 400, `{"error":"unexpected data after the JSON value, at byte 43"}`},
		{`[]`, 422, `{"errors":[{"index":0,"field":"","message":"the array is empty: nothing to suppress"}]}`},
		// The last of an address given twice wins.
		{`[{"email":"Cy@example.com","reason":"bounce"},{"email":"cy@example.com","reason":"manual"}]`, 200, `{"accepted":2}`},
	} {
		code, body := call(t, "POST", url, auth, tt.body)
		if code != tt.code || body != tt.want+"\n" {
			t.Errorf("POST %.60s: %d %s\nwant %d %s", tt.body, code, body, tt.code, tt.want)
		}
	}
	code, body := call(t, "GET", url, auth, "")
	created := regexp.MustCompile(`"created_at":"[^"]+"`)
	want := `[{"email":"ann@example.com","reason":"complaint","source":"api","created_at":"T"},` +
		`{"email":"bo@example.com","reason":"bounce","source":"ses","created_at":"T"},` +
		`{"email":"cy@example.com","reason":"manual","source":"api","created_at":"T"}]` + "\n"
	if got := created.ReplaceAllString(body, `"created_at":"T"`); code != 200 || got != want {
		t.Errorf("GET: %d %s\nwant %s", code, got, want)
	}
	if code, body := call(t, "DELETE", url+"/BO@example.com", auth, ""); code != 200 || body != `{"removed":true}`+"\n" {
		t.Errorf("DELETE bo: %d %s", code, body)
	}
	if code, body := call(t, "DELETE", url+"?email=cy@example.com", auth, ""); code != 200 || body != `{"removed":true}`+"\n" {
		t.Errorf("DELETE ?email=cy: %d %s", code, body)
	}
	if code, body := call(t, "DELETE", url+"/bo@example.com", auth, ""); code != 404 || body != `{"error":"bo@example.com is not suppressed"}`+"\n" {
		t.Errorf("DELETE bo again: %d %s", code, body)
	}
	if _, body := call(t, "GET", url, auth, ""); !strings.HasPrefix(body, `[{"email":"ann@example.com"`) || strings.Count(body, "email") != 1 {
		t.Errorf("GET after deletes: %s", body)
	}
}

func TestSubscribeAPI(t *testing.T) {
	base, st := serve(t)
	ctx := context.Background()
	line := `{"id":"c1","email":"ann@example.com","created_at":"2026-01-01T00:00:00Z"}` + "\n"
	if res, err := importer.Customers(ctx, st, strings.NewReader(line), "c.jsonl", importer.Options{Strict: true}); err != nil || res.Bad > 0 {
		t.Fatal(err, res.Problems)
	}
	if _, err := st.Unsubscribe(ctx, "c1", "unsubscribe link", "winback"); err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + token
	for _, tt := range []struct {
		path, body string
		code       int
		want       string
	}{
		{"/api/v1/customers/c1/subscribe", `{}`, 422, `{"errors":[{"index":0,"field":"source","message":"required: say who asked for the re-subscription, e.g. \"support-ticket-123\""}]}`},
		{"/api/v1/customers/nobody/subscribe", `{"source":"form"}`, 404, `{"error":"no customer with id \"nobody\""}`},
		{"/api/v1/customers/c1/subscribe", `{"source":"preference-center"}`, 200, `{"changed":true}`},
		{"/api/v1/customers/c1/subscribe", `{"source":"preference-center"}`, 200, `{"changed":false}`},
	} {
		if code, body := call(t, "POST", base+tt.path, auth, tt.body); code != tt.code || body != tt.want+"\n" {
			t.Errorf("POST %s %s: %d %s\nwant %d %s", tt.path, tt.body, code, body, tt.code, tt.want)
		}
	}
	h, err := st.ConsentHistory(ctx, "c1")
	if err != nil || len(h) != 2 || !h[1].Subscribed || h[1].Source != "preference-center" {
		t.Errorf("consent history: %+v %v", h, err)
	}
}

// TestChunkedBodyOverTheLimit: a body without a declared length that runs
// past API_MAX_BODY is answered 413 in JSON, and nothing is written.
func TestChunkedBodyOverTheLimit(t *testing.T) {
	base, st := serve(t)
	body := io.MultiReader(strings.NewReader(`[{"email":"a@example.com","reason":"`), strings.NewReader(strings.Repeat("x", 2000)+`"}]`))
	req, err := http.NewRequest("POST", base+"/api/v1/suppressions", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 || string(b) != `{"error":"the body is over the limit of 1024 bytes"}`+"\n" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("chunked body over the limit: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	if list, err := st.Suppressions(context.Background()); err != nil || len(list) != 0 {
		t.Errorf("suppressions after a refused body: %v %v", list, err)
	}
}
