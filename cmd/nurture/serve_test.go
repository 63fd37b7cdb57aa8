package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the nurture command built once for the tests that need a real
// process (signals, crashes).
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nurture-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "nurture")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build nurture: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a nurture process whose log lines tests can wait for.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
	err  error
}

func startProc(t *testing.T, env map[string]string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "LOG_LEVEL=debug")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	p := &proc{t: t, cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("nurture %s logs:\n%s", strings.Join(args, " "), p.output())
		}
	})
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// waitLog waits until the process has logged a line containing all of
// parts, and returns that line.
func (p *proc) waitLog(timeout time.Duration, parts ...string) string {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, line := range strings.Split(p.output(), "\n") {
			all := true
			for _, s := range parts {
				all = all && strings.Contains(line, s)
			}
			if all {
				return line
			}
		}
		select {
		case <-p.done:
			p.t.Fatalf("process exited (%v) before logging %q", p.err, parts)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no log line with %q within %s", parts, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// wait waits for the process to exit and returns its exit status.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("process still running after %s", timeout)
	}
	return p.cmd.ProcessState.ExitCode()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	return send(t, "GET", url, nil)
}

// send makes a request with the given headers ("user:password" under
// "basic" sets basic auth).
func send(t *testing.T, method, url string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if k == "basic" {
			user, pass, _ := strings.Cut(v, ":")
			req.SetBasicAuth(user, pass)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func copyDir(t *testing.T, from string) string {
	t.Helper()
	dir := t.TempDir()
	files, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(from, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestServeHTTPReloadAndShutdown(t *testing.T) {
	env := fixtureEnv(t)
	env["CAMPAIGNS_DIR"] = copyDir(t, env["CAMPAIGNS_DIR"])
	env["HTTP_ADDR"] = freeAddr(t)
	env["OUTBOX_DIR"] = t.TempDir()
	env["UNSUBSCRIBE_URL"] = "https://mail.example.com"
	env["UNSUBSCRIBE_SECRET"] = "0123456789abcdef-secret"
	env["ADMIN_USER"] = "ops"
	env["ADMIN_PASSWORD"] = "admin-secret"
	env["METRICS_TOKEN"] = "metrics-secret"
	env["MONITORING_READONLY"] = "true"
	admin := map[string]string{"basic": "ops:admin-secret"}
	p := startProc(t, env, "serve")
	p.waitLog(20*time.Second, "nurture serving", "roles=http,scheduler,worker")
	p.waitLog(10*time.Second, "became scheduler leader")
	base := "http://" + env["HTTP_ADDR"]

	code, body := get(t, base+"/healthz")
	if want := `{"postgres":"ok","redis":"ok","scheduler_leader":true,"smtp":"ok"}` + "\n"; code != 200 || body != want {
		t.Errorf("/healthz: %d %s, want 200 %s", code, body, want)
	}
	if code, body := get(t, base+"/metrics"); code != 401 || body != "Unauthorized\n" {
		t.Errorf("/metrics without the token: %d %.80q", code, body)
	}
	code, body = send(t, "GET", base+"/metrics", map[string]string{"Authorization": "Bearer metrics-secret"})
	for _, want := range []string{"nurture_send_duration_seconds", "go_goroutines", "process_resident_memory_bytes"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s (status %d)", want, code)
		}
	}
	for _, path := range []string{"/monitoring/", "/monitoring/api/queues"} {
		if code, body := get(t, base+path); code != 401 || body != "Unauthorized\n" {
			t.Errorf("%s without credentials: %d %.80q", path, code, body)
		}
	}
	// The results pages: behind the login, counted by the leader's poll.
	for _, path := range []string{"/campaigns", "/lifecycle"} {
		if code, body := get(t, base+path); code != 401 || body != "Unauthorized\n" {
			t.Errorf("%s without credentials: %d %.80q", path, code, body)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body = send(t, "GET", base+"/campaigns", admin)
		if code == 200 && strings.Contains(body, `id="report"`) && strings.Contains(body, "as of ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/campaigns never showed the leader's counts: %d %.200q", code, body)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	if code, body := send(t, "GET", base+"/lifecycle", admin); code != 200 || !strings.Contains(body, `id="stages"`) {
		t.Errorf("/lifecycle: %d %.80q", code, body)
	}
	code, body = send(t, "GET", base+"/monitoring/", admin)
	if code != 200 || !strings.Contains(body, "<html") {
		t.Errorf("/monitoring/: status %d, body starts %.80q", code, body)
	}
	// The dashboard's scripts load from under /monitoring/, and its API
	// reads the queues from Redis.
	scripts := regexp.MustCompile(`<script[^>]* src="(/monitoring/[^"]+\.js)"`).FindAllStringSubmatch(body, -1)
	if len(scripts) == 0 {
		t.Errorf("/monitoring/ references no script")
	}
	for _, m := range scripts {
		if code, js := send(t, "GET", base+m[1], admin); code != 200 || len(js) < 1000 {
			t.Errorf("%s: status %d, %d bytes", m[1], code, len(js))
		}
	}
	if code, body := get(t, base+"/unsubscribe?c=c1&t=forged"); code != 400 || !strings.Contains(body, "not valid") {
		t.Errorf("/unsubscribe with a forged token: status %d, %.80q", code, body)
	}
	if code, body := send(t, "GET", base+"/monitoring/api/queues", admin); code != 200 || !strings.HasPrefix(body, `{"queues":`) {
		t.Errorf("/monitoring/api/queues: status %d, %.80q", code, body)
	}
	// MONITORING_READONLY: the dashboard changes nothing.
	if code, body := send(t, "POST", base+"/monitoring/api/queues/default:pause", admin); code != 405 || !strings.Contains(body, "read-only mode") {
		t.Errorf("pause on a read-only dashboard: status %d, %.80q", code, body)
	}

	// An invalid edit is refused and the previous set keeps running.
	bad := filepath.Join(env["CAMPAIGNS_DIR"], "broken.yaml")
	if err := os.WriteFile(bad, []byte("name: broken\nschedule: every day\nemail: {template: welcome}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.signal(syscall.SIGHUP)
	line := p.waitLog(10*time.Second, "reload refused")
	if !strings.Contains(line, "broken.yaml:2:11: schedule: invalid cron expression") {
		t.Errorf("reload error does not name the problem: %s", line)
	}
	// A valid edit, with a campaign on a new queue, is taken.
	if err := os.WriteFile(bad, []byte("name: second\nschedule: \"@hourly\"\nemail: {template: welcome}\nqueue: extra\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.signal(syscall.SIGHUP)
	p.waitLog(10*time.Second, "reloaded campaigns", "campaigns=3")
	p.waitLog(10*time.Second, "worker queues changed", "queues=default,extra,nudges")
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz after reload: %d", code)
	}

	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0", code)
	}
	if !strings.Contains(p.output(), "shutting down") {
		t.Error("no shutdown log line")
	}
}

func TestServeWaitsForUnreachableServices(t *testing.T) {
	closed := freeAddr(t) // nothing listens there
	for _, tt := range []struct{ variable, value, log string }{
		{"DATABASE_URL", "postgres://root@" + closed + "/nurture?sslmode=disable&connect_timeout=2", "PostgreSQL unavailable; retrying"},
		{"REDIS_URL", "redis://" + closed + "/0", "Redis unavailable; retrying"},
		{"SMTP_URL", "smtp://" + closed + "?tls=none", "mail transport unavailable; retrying"},
	} {
		env := fixtureEnv(t)
		env[tt.variable] = tt.value
		p := startProc(t, env, "serve", "--role", "worker")
		if line := p.waitLog(15*time.Second, tt.log); !strings.Contains(line, closed) {
			t.Errorf("%s: error does not say where: %s", tt.variable, line)
		}
		p.signal(syscall.SIGTERM)
		p.wait(10 * time.Second)
	}
}

func TestServeRefusesUnsafeHTTPSettings(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		want string
		code int
	}{
		{map[string]string{"HTTP_ADDR": "0.0.0.0:8080"}, `nurture: HTTP_ADDR "0.0.0.0:8080" is not a loopback address and ADMIN_PASSWORD is not set: set ADMIN_PASSWORD to protect the admin pages, or listen on HTTP_ADDR=127.0.0.1:8080`, 1},
		{map[string]string{"HTTP_ADDR": ":8080"}, `nurture: HTTP_ADDR ":8080" is not a loopback address and ADMIN_PASSWORD is not set: set ADMIN_PASSWORD to protect the admin pages, or listen on HTTP_ADDR=127.0.0.1:8080`, 1},
		// Malformed values are settings errors, reported with the others.
		{map[string]string{"MONITORING_READONLY": "yes"}, `nurture: MONITORING_READONLY="yes": want true or false`, 2},
		{map[string]string{"PPROF": "on"}, `nurture: PPROF="on": want true or false`, 2},
		{map[string]string{"API_MAX_BODY": "10 megabytes"}, `nurture: API_MAX_BODY="10 megabytes": invalid size "10 megabytes": want bytes, or a whole number with a unit (B, kB, MB, GB, KiB, MiB, GiB) such as 10MiB`, 2},
	} {
		_, stderr, code := cli(t, tt.env, "serve", "--role", "http")
		if code != tt.code || stderr != tt.want+"\n" {
			t.Errorf("%v: status %d, stderr %q, want %d %q", tt.env, code, stderr, tt.code, tt.want)
		}
	}
	// Without the http role a public address is no error; a malformed value still is.
	_, stderr, code := cli(t, map[string]string{"HTTP_ADDR": "0.0.0.0:8080", "MONITORING_READONLY": "maybe"}, "serve", "--role", "worker")
	if want := "nurture: MONITORING_READONLY=\"maybe\": want true or false\n"; code != 2 || stderr != want {
		t.Errorf("worker role: status %d, stderr %q, want 2 %q", code, stderr, want)
	}
}

func TestServeReportsPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	env := fixtureEnv(t)
	env["HTTP_ADDR"] = busy.Addr().String()
	_, stderr, code := cli(t, env, "serve", "--role", "http")
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if want := "nurture: http: listen tcp " + busy.Addr().String() + ": bind: address already in use"; code != 1 || lines[len(lines)-1] != want {
		t.Errorf("status %d, stderr:\n%s\nwant last line %q", code, stderr, want)
	}
}
