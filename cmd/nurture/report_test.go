package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"nurture/internal/smtptest"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

// TestReport: emails sent by a worker, a purchase after one of them, and
// the report that attributes it; every line reconciles.
func TestReport(t *testing.T) {
	env := fixtureEnv(t)
	if _, stderr, code := cli(t, env, "migrate"); code != 0 {
		t.Fatalf("migrate: %s", stderr)
	}
	importFixture(t, env)
	if _, stderr, code := cli(t, env, "run-once", "--at", testenv.FixtureAt); code != 0 {
		t.Fatalf("run-once: %s", stderr)
	}
	st := openStore(t, env)
	sent := func() (n, total int) {
		counts, err := st.DeliveryCounts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range counts {
			total += c.N
			if c.Status == store.StatusSent {
				n += c.N
			}
		}
		return n, total
	}
	sink := smtptest.Start(t)
	env["SMTP_URL"] = sink.URL()
	startProc(t, env, "serve", "--role", "worker")
	for deadline := time.Now().Add(time.Minute); ; {
		n, total := sent()
		if n == total && total > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries sent", n, total)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// c1 (welcome) buys a minute after its email went out.
	bought := time.Now().UTC().Add(time.Minute).Format(time.RFC3339)
	if _, stderr, code := cliStdin(t, env, `{"id":"o1","customer_id":"c1","type":"purchase","occurred_at":"`+bought+`","amount":25.5}`+"\n",
		"import", "events", "-"); code != 0 {
		t.Fatalf("import: %s", stderr)
	}
	out, stderr, code := cli(t, env, "report", "--json")
	if code != 0 {
		t.Fatalf("report: %s", stderr)
	}
	type line struct {
		Campaign   string         `json:"campaign"`
		Variant    *string        `json:"variant"`
		Step       *int           `json:"step"`
		Planned    int            `json:"planned"`
		Sent       int            `json:"sent"`
		Failed     int            `json:"failed"`
		Skipped    map[string]int `json:"skipped"`
		HeldOut    int            `json:"held_out"`
		Unfinished int            `json:"unfinished"`
		Converted  int            `json:"converted"`
		Revenue    float64        `json:"revenue"`
		Uplift     *struct{}      `json:"uplift"`
	}
	byCampaign := map[string]line{}
	for _, s := range strings.Split(strings.TrimSpace(out), "\n") {
		var l line
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("%v: %s", err, s)
		}
		sum := l.Sent + l.Failed + l.HeldOut + l.Unfinished
		for _, n := range l.Skipped {
			sum += n
		}
		if sum != l.Planned {
			t.Errorf("line does not reconcile: %s", s)
		}
		if l.Variant == nil && l.Step == nil {
			byCampaign[l.Campaign] = l
		}
	}
	if w := byCampaign["welcome"]; w.Planned == 0 || w.Sent != w.Planned || w.Converted != 1 || w.Revenue != 25.5 || w.Uplift != nil {
		t.Errorf("welcome: %+v", w)
	}
	if n := byCampaign["nudge"]; n.Converted != 0 || n.Revenue != 0 {
		t.Errorf("nudge: %+v", n)
	}
	if len(byCampaign) != 2 {
		t.Errorf("campaigns reported: %v\n%s", byCampaign, out)
	}

	// The HTTP role exports the same totals from PostgreSQL, once the
	// scheduler's leader has refreshed the rollups.
	env["HTTP_ADDR"] = freeAddr(t)
	env["TRIGGER_POLL"] = "200ms"
	srv := startProc(t, env, "serve", "--role", "scheduler,http")
	srv.waitLog(20*time.Second, "http listening")
	w := byCampaign["welcome"]
	wants := []string{
		fmt.Sprintf(`nurture_results_deliveries{campaign="welcome",status="sent"} %d`, w.Sent),
		`nurture_results_converted{campaign="welcome"} 1`,
		`nurture_results_revenue{campaign="welcome"} 25.5`,
		`nurture_results_converted{campaign="nudge"} 0`,
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, body := get(t, "http://"+env["HTTP_ADDR"]+"/metrics")
		missing := ""
		for _, want := range wants {
			if !strings.Contains(body, want+"\n") {
				missing = want
				break
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q", missing)
		}
		time.Sleep(100 * time.Millisecond) // polling with a deadline
	}

	out, _, code = cli(t, env, "report", "--campaign", "welcome")
	if code != 0 || !strings.HasPrefix(out, "CAMPAIGN") || !strings.Contains(out, "\nwelcome ") || strings.Contains(out, "nudge") {
		t.Errorf("report --campaign welcome: %d\n%s", code, out)
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--since", "yesterday"}, 2, `nurture report: --since "yesterday" is not an RFC 3339 time such as 2026-11-24T09:00:00Z`},
		{[]string{"--since", "2026-11-25T00:00:00Z", "--until", "2026-11-24T00:00:00Z"}, 2, "nurture report: --since must be before --until"},
		{[]string{"--campaign", "nobody"}, 1, `nurture: report: no campaign "nobody", and no deliveries of one`},
	} {
		if _, stderr, code := cli(t, env, append([]string{"report"}, tt.args...)...); code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("report %v: %d %s, want %d %s", tt.args, code, stderr, tt.code, tt.want)
		}
	}
}
