package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"nurture/internal/testenv"
)

// TestAPIEventsFeedTriggers: an event posted to the HTTP role starts a
// triggered campaign exactly as an imported one does, once however often
// it is posted; the customer's view shows the delivery.
func TestAPIEventsFeedTriggers(t *testing.T) {
	dir := campaignsWith(t, map[string]string{
		"cart.yaml": "name: cart\ntrigger: {event: cart_abandoned, delay: 1h}\nemail: {template: nudge}\n",
	})
	env := fixtureEnv(t)
	env["CAMPAIGNS_DIR"] = dir
	env["HTTP_ADDR"] = freeAddr(t)
	env["API_TOKENS"] = "0123456789abcdef-api"
	if _, stderr, code := cli(t, env, "migrate"); code != 0 {
		t.Fatalf("migrate: %s", stderr)
	}
	importFixture(t, env)
	p := startProc(t, env, "serve", "--role", "http")
	p.waitLog(20*time.Second, "http listening")
	base := "http://" + env["HTTP_ADDR"]

	post := func(body string) (int, string) {
		req, err := http.NewRequest("POST", base+"/api/v1/events", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+env["API_TOKENS"])
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	event := `{"id":"cart-5","customer_id":"c5","type":"cart_abandoned","occurred_at":"2026-11-24T07:30:00Z","properties":{"cart_value":42}}` + "\n"
	for i, want := range []string{`{"accepted":1,"duplicates":0}`, `{"accepted":0,"duplicates":1}`} {
		if code, body := post(event); code != 200 || body != want+"\n" {
			t.Errorf("post %d: %d %s, want %s", i+1, code, body, want)
		}
	}
	for i := range 2 {
		out, stderr, code := cli(t, env, "run-once", "--at", testenv.FixtureAt)
		want := "cart               candidates=1 matched=1 planned=1 enqueued=1\n"
		if i == 1 {
			want = "cart               candidates=0 matched=0 planned=0 enqueued=0\n"
		}
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("run-once %d: status %d, lacks %q:\n%s%s", i+1, code, want, out, stderr)
		}
	}
	out, _, _ := cli(t, env, "deliveries", "--json")
	if n := strings.Count(out, "\n"); n != 1 || !strings.Contains(out, `"campaign":"cart","customer_id":"c5"`) || !strings.Contains(out, `"event_id":"cart-5"`) {
		t.Errorf("deliveries:\n%s", out)
	}
	code, body := send(t, "GET", base+"/api/v1/customers/c5", map[string]string{"Authorization": "Bearer " + env["API_TOKENS"]})
	if code != 200 || !strings.Contains(body, `"deliveries":[{"id":"`) || !strings.Contains(body, `"event_id":"cart-5"`) {
		t.Errorf("GET c5: %d %s", code, body)
	}
}
