package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"nurture/internal/smtptest"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

// TestRateLimitAcrossProcesses runs two worker processes against one SMTP
// server under rate_limits of 5/s for gmail.com: counted from the arrival
// times at the server, no second holds more than 5 emails to gmail.com
// (plus the burst of one), every email arrives once, and both processes
// sent some.
func TestRateLimitAcrossProcesses(t *testing.T) {
	env := fixtureEnv(t)
	dir := t.TempDir()
	for _, name := range []string{"lifecycle.yaml", "welcome.yaml"} {
		b, err := os.ReadFile(filepath.Join(testenv.Fixture("campaigns"), name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "settings.yaml"), []byte("rate_limits: {global: 100/s, domains: {gmail.com: 5/s}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env["CAMPAIGNS_DIR"] = dir
	at := time.Now().UTC().Truncate(time.Second)
	const gmail, others = 16, 4
	var lines strings.Builder
	for i := range gmail + others {
		domain := "gmail.com"
		if i >= gmail {
			domain = "example.org"
		}
		fmt.Fprintf(&lines, `{"id":"r%02d","email":"r%02d@%s","created_at":"%s"}`+"\n", i, i, domain, at.Add(-time.Hour).Format(time.RFC3339))
	}
	customers := filepath.Join(t.TempDir(), "customers.jsonl")
	if err := os.WriteFile(customers, []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := cli(t, env, "import", "customers", customers); code != 0 {
		t.Fatal(stderr)
	}
	if _, stderr, code := cli(t, env, "run-once", "--at", at.Format(time.RFC3339)); code != 0 {
		t.Fatal(stderr)
	}

	sink := smtptest.Start(t)
	env["SMTP_URL"] = sink.URL()
	env["SMTP_CONNS"] = "2"
	env["WORKER_CONCURRENCY"] = "4"
	var addrs []string
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, l.Addr().String())
		l.Close()
	}
	for _, addr := range addrs {
		penv := map[string]string{"HTTP_ADDR": addr}
		for k, v := range env {
			penv[k] = v
		}
		startProc(t, penv, "serve", "--role", "worker,http")
	}

	st := openStore(t, env)
	deadline := time.Now().Add(time.Minute)
	for {
		sent := 0
		err := st.Deliveries(context.Background(), func(d *store.DeliveryRow) error {
			if d.Status == store.StatusSent {
				sent++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if sent == gmail+others {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries sent after a minute", sent, gmail+others)
		}
		time.Sleep(100 * time.Millisecond)
	}

	ids := sink.MessageIDs()
	if len(ids) != gmail+others || sink.Count() != gmail+others {
		t.Errorf("server accepted %d messages with %d Message-IDs, want %d", sink.Count(), len(ids), gmail+others)
	}
	var times []time.Time
	for _, a := range sink.Attempts() {
		if a.Code == 250 && strings.HasSuffix(a.To[0], "@gmail.com") {
			times = append(times, a.At)
		}
	}
	if len(times) != gmail {
		t.Fatalf("%d messages to gmail.com, want %d", len(times), gmail)
	}
	most := 0
	for i := range times {
		n := 0
		for j := i; j < len(times) && times[j].Sub(times[i]) < time.Second; j++ {
			n++
		}
		most = max(most, n)
	}
	t.Logf("gmail.com: %d messages over %s; busiest second %d", len(times), times[len(times)-1].Sub(times[0]).Round(time.Millisecond), most)
	if most > 6 {
		t.Errorf("%d messages to gmail.com within one second, want at most 6 (5/s and a burst of one)", most)
	}
	for i, addr := range addrs {
		if n := scrape(t, addr, `nurture_deliveries_total{campaign="welcome",status="sent"}`); n == 0 {
			t.Errorf("worker process %d sent nothing: the limit was not shared", i+1)
		}
	}
}

// scrape reads one sample from a process's /metrics page, 0 when absent.
func scrape(t *testing.T, addr, name string) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	f, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return int(f)
}
