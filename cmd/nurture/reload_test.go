package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// saveFile writes path as editors do: a temporary dot-file renamed over
// it, so that a watcher sees one change.
func saveFile(t *testing.T, path, body string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".swp")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// customersOf returns the customer ids of campaign's deliveries.
func customersOf(t *testing.T, env map[string]string, campaign string) []string {
	t.Helper()
	out, stderr, code := cli(t, env, "deliveries", "--campaign", campaign, "--json")
	if code != 0 {
		t.Fatalf("deliveries: status %d: %s", code, stderr)
	}
	var ids []string
	for _, m := range regexp.MustCompile(`"customer_id":"([^"]+)"`).FindAllStringSubmatch(out, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func waitCustomers(t *testing.T, env map[string]string, campaign, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := strings.Join(customersOf(t, env, campaign), ",")
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's deliveries are for %q, want %q", campaign, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metricsPage reads the lines of /metrics starting with prefix.
func metricsPage(t *testing.T, base, prefix string) string {
	t.Helper()
	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestServeReloadsEditedFiles edits the campaigns of a running serve
// without a signal: a new campaign runs, a bad edit leaves the running set
// as it was, and SIGHUP reloads too.
func TestServeReloadsEditedFiles(t *testing.T) {
	env := fixtureEnv(t)
	importFixture(t, env)
	env["CAMPAIGNS_DIR"] = copyDir(t, env["CAMPAIGNS_DIR"])
	env["TEMPLATES_DIR"] = copyDir(t, env["TEMPLATES_DIR"])
	env["HTTP_ADDR"] = freeAddr(t)
	env["OUTBOX_DIR"] = t.TempDir()
	base := "http://" + env["HTTP_ADDR"]
	p := startProc(t, env, "serve")
	p.waitLog(20*time.Second, "nurture serving", "campaigns=2", "watching=true")
	p.waitLog(10*time.Second, "became scheduler leader")

	// A new campaign, written as an editor saves it: taken without a
	// signal, and it runs. It writes once to every subscribed customer
	// (c3 is not), whatever the day.
	hello := filepath.Join(env["CAMPAIGNS_DIR"], "hello.yaml")
	const helloYAML = "name: hello\nschedule: \"@every 1s\"\nfrequency: {max_sends: 1}\nemail: {template: welcome}\n"
	saveFile(t, hello, helloYAML)
	p.waitLog(10*time.Second, "reloaded campaigns", `cause="files changed"`, "campaigns=3", "added=hello")
	waitCustomers(t, env, "hello", "c1,c2,c4,c5,c6")

	// A bad edit that would also disable hello: refused whole, so hello
	// still runs, as its new customer shows.
	saveFile(t, hello, helloYAML+"enabled: false\ncolour: red\n")
	line := p.waitLog(10*time.Second, "reload refused: ")
	if want := `level=ERROR msg="reload refused: ` + hello + `:6:1: unknown key \"colour\"`; !strings.Contains(line, want) {
		t.Errorf("reload error:\n  %s\nwant it to contain\n  %s", line, want)
	}
	p.waitLog(10*time.Second, "reload refused; the previous campaigns and templates keep running", "errors=1")
	_, stderr, code := cliStdin(t, env, `{"id":"c9","email":"nia@example.com","first_name":"Nia","created_at":"2026-01-01T10:00:00Z"}`+"\n",
		"import", "customers", "-")
	if code != 0 {
		t.Fatalf("import: status %d: %s", code, stderr)
	}
	waitCustomers(t, env, "hello", "c1,c2,c4,c5,c6,c9")
	if got, want := metricsPage(t, base, "nurture_reload"), "nurture_reload_last_success_timestamp_seconds "; !strings.Contains(got, want) {
		t.Errorf("/metrics:\n%s\nlacks %s", got, want)
	}
	if got, want := metricsPage(t, base, "nurture_reloads_total"), "nurture_reloads_total{result=\"invalid\"} 1\nnurture_reloads_total{result=\"ok\"} 1"; got != want {
		t.Errorf("/metrics:\n%s\nwant:\n%s", got, want)
	}
	if got, want := metricsPage(t, base, "nurture_reload_last_successful"), "nurture_reload_last_successful 0"; got != want {
		t.Errorf("/metrics: %s, want %s", got, want)
	}

	// Fixed (hello removed): taken, and the files are good again.
	if err := os.Remove(hello); err != nil {
		t.Fatal(err)
	}
	p.waitLog(10*time.Second, "reloaded campaigns", `cause="files changed"`, "campaigns=2", "removed=hello")
	if got, want := metricsPage(t, base, "nurture_reload_last_successful"), "nurture_reload_last_successful 1"; got != want {
		t.Errorf("/metrics: %s, want %s", got, want)
	}
	// SIGHUP reloads too.
	p.signal(syscall.SIGHUP)
	p.waitLog(10*time.Second, "reloaded campaigns", "cause=SIGHUP", "campaigns=2", "campaigns_changed=none")

	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0", code)
	}
}
