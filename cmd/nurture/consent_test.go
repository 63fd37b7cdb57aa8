package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"nurture/internal/store"
	"nurture/internal/testenv"
	"nurture/internal/unsubscribe"
)

// unsubscribeByLink posts the customer's one-click unsubscribe link to the
// HTTP role's handler, with the store's clock reading at.
func unsubscribeByLink(t *testing.T, env map[string]string, customerID string, at time.Time) {
	t.Helper()
	st, err := store.Open(context.Background(), env["DATABASE_URL"], store.Config{Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	links, err := unsubscribe.New(unsubscribe.Config{BaseURL: "https://mail.example.com", Secret: "0123456789abcdef-secret",
		Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	h := unsubscribeHandler(st, links, slog.New(slog.DiscardHandler))
	target := strings.TrimPrefix(links.URL(customerID, "welcome"), "https://mail.example.com")
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader("List-Unsubscribe=One-Click"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if body, _ := io.ReadAll(rec.Body); rec.Code != http.StatusOK || !strings.Contains(string(body), "You are unsubscribed") {
		t.Fatalf("POST %s: status %d, %.200q", target, rec.Code, body)
	}
}

func consentHistory(t *testing.T, env map[string]string, customerID string) []store.ConsentChange {
	t.Helper()
	st := openStore(t, env)
	h, err := st.ConsentHistory(context.Background(), customerID)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func planWelcome(t *testing.T, env map[string]string) string {
	t.Helper()
	out, stderr, code := cli(t, env, "plan", "--at", testenv.FixtureAt, "--json", "--campaign", "welcome")
	if code != 0 {
		t.Fatalf("plan: status %d: %s", code, stderr)
	}
	return out
}

func TestUnsubscribeSurvivesReimportUntilSubscribe(t *testing.T) {
	env := fixtureEnv(t)
	importFixture(t, env)
	const (
		ann = `{"campaign":"welcome","customer_id":"c1","email":"ann@example.com","stage":"new","template":"welcome","send_at":"2026-11-24T09:00:00Z","step":1,"status":"planned"}` + "\n"
		flo = `{"campaign":"welcome","customer_id":"c6","email":"flo@example.com","stage":"new","template":"welcome","send_at":"2026-11-24T09:00:00Z","step":1,"status":"planned"}` + "\n"
	)
	if got := planWelcome(t, env); got != ann+flo {
		t.Fatalf("plan before unsubscribing:\n%s", got)
	}
	optOutAt := time.Date(2026, 11, 23, 18, 4, 5, 0, time.UTC)
	unsubscribeByLink(t, env, "c1", optOutAt)

	// The same file again (subscribed omitted: true by default), then a
	// line saying subscribed: true outright.
	if _, stderr, code := cli(t, env, "import", "customers", testenv.Fixture("customers.jsonl")); code != 0 {
		t.Fatalf("re-import: status %d: %s", code, stderr)
	}
	line := `{"id":"c1","email":"ann@example.com","first_name":"Ann","subscribed":true,"created_at":"2026-11-20T10:00:00Z"}` + "\n"
	out, stderr, code := cliStdin(t, env, line, "import", "customers", "-")
	if code != 0 || out != "-: 1 line(s): 0 customers imported or changed, 1 unchanged, 0 bad\n" {
		t.Fatalf("import subscribed:true: status %d, %q %q", code, out, stderr)
	}
	if got := planWelcome(t, env); got != flo {
		t.Errorf("plan after re-imports:\n%swant:\n%s", got, flo)
	}

	out, stderr, code = cli(t, env, "subscribe", "c1", "--source", "crm-fix")
	if code != 0 || out != "customer \"c1\" subscribed again (source \"crm-fix\"): campaigns may email them from the next tick\n" {
		t.Fatalf("subscribe: status %d, %q %q", code, out, stderr)
	}
	if got := planWelcome(t, env); got != ann+flo {
		t.Errorf("plan after subscribe:\n%swant:\n%s", got, ann+flo)
	}
	out, _, code = cli(t, env, "subscribe", "c1", "--source", "crm-fix")
	if code != 0 || out != "customer \"c1\" is subscribed already: nothing changed\n" {
		t.Errorf("second subscribe: status %d, %q", code, out)
	}

	got := consentHistory(t, env, "c1")
	if len(got) == 2 {
		// The command's clock is the real one: its time is not asserted.
		got[1].ChangedAt = time.Time{}
	}
	want := []store.ConsentChange{
		{Subscribed: false, Source: "unsubscribe link", Campaign: "welcome", ChangedAt: optOutAt},
		{Subscribed: true, Source: "crm-fix"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("consent history of c1:\n got %+v\nwant %+v", got, want)
	}
}

func TestSubscribeRefuses(t *testing.T) {
	env := fixtureEnv(t)
	importFixture(t, env)
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"subscribe", "c3"}, 2,
			"nurture subscribe: --source is required: say who asked for the re-subscription, e.g. --source support-ticket-123\n"},
		{[]string{"subscribe", "ghost", "--source", "crm-fix"}, 1, "nurture: subscribe: no customer with id \"ghost\"\n"},
	} {
		out, stderr, code := cli(t, env, tc.args...)
		if code != tc.code || out != "" || stderr != tc.stderr {
			t.Errorf("%s: status %d, stdout %q, stderr %q; want status %d, stderr %q",
				strings.Join(tc.args, " "), code, out, stderr, tc.code, tc.stderr)
		}
	}
	if _, stderr, code := cli(t, env, "subscribe", "--source", "crm-fix"); code != 2 || !strings.HasPrefix(stderr, "Usage: nurture subscribe ID --source TEXT\n") {
		t.Errorf("subscribe without an id: status %d, %q", code, stderr)
	}
	if h := consentHistory(t, env, "c3"); len(h) != 1 || h[0].Source != "import" || h[0].Subscribed {
		t.Errorf("consent history of c3 changed: %+v", h)
	}
}
