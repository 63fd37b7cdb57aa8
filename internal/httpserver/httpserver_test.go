package httpserver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"nurture/internal/httpserver"
	"nurture/internal/metrics"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

// env is a store and a Redis client of the test's own.
type env struct {
	store *store.Store
	rdb   *redis.Client
}

func newEnv(t *testing.T) env {
	t.Helper()
	rdb := redis.NewClient(testenv.Redis(t))
	t.Cleanup(func() { rdb.Close() })
	return env{store: testenv.Store(t), rdb: rdb}
}

func (e env) deps() httpserver.Deps {
	return httpserver.Deps{Store: e.store, Redis: e.rdb, Metrics: metrics.New().Handler()}
}

// start runs a server on a free loopback port and returns its base URL;
// the server is stopped when the test ends.
func start(t *testing.T, cfg httpserver.Config, deps httpserver.Deps) string {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s, err := httpserver.New(cfg, deps, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return "http://" + s.Addr()
}

// request is one HTTP request of a test.
type request struct {
	method, path string
	header       map[string]string
	user, pass   string // basic auth, when user is set
	body         io.Reader
}

// response is what a test asserts.
type response struct {
	code   int
	header http.Header
	body   string
}

func do(t *testing.T, base string, r request) response {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	req, err := http.NewRequest(r.method, base+r.path, r.body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if r.user != "" {
		req.SetBasicAuth(r.user, r.pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

const unauthorized = "Unauthorized\n"

func TestAdminPagesNeedCredentials(t *testing.T) {
	e := newEnv(t)
	deps := e.deps()
	deps.Admin = map[string]http.Handler{"/campaigns": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "campaigns page")
	})}
	base := start(t, httpserver.Config{AdminUser: "ops", AdminPassword: "correct horse"}, deps)

	for _, path := range []string{"/monitoring/", "/monitoring/api/queues", "/campaigns"} {
		for _, tt := range []struct {
			name       string
			user, pass string
		}{
			{"no credentials", "", ""},
			{"wrong password", "ops", "wrong"},
			{"wrong user", "admin", "correct horse"},
			{"empty password", "ops", ""},
		} {
			got := do(t, base, request{path: path, user: tt.user, pass: tt.pass})
			if got.code != 401 || got.body != unauthorized || got.header.Get("WWW-Authenticate") != `Basic realm="nurture admin", charset="UTF-8"` {
				t.Errorf("%s, %s: %d %q WWW-Authenticate %q", path, tt.name, got.code, got.body, got.header.Get("WWW-Authenticate"))
			}
		}
	}
	if got := do(t, base, request{path: "/monitoring/", user: "ops", pass: "correct horse"}); got.code != 200 || !strings.Contains(got.body, "<html") {
		t.Errorf("/monitoring/ with credentials: %d %.80q", got.code, got.body)
	}
	if got := do(t, base, request{path: "/monitoring/api/queues", user: "ops", pass: "correct horse"}); got.code != 200 || got.body != "{\"queues\":[]}\n" {
		t.Errorf("/monitoring/api/queues with credentials: %d %q", got.code, got.body)
	}
	if got := do(t, base, request{path: "/campaigns", user: "ops", pass: "correct horse"}); got.code != 200 || got.body != "campaigns page" {
		t.Errorf("/campaigns with credentials: %d %q", got.code, got.body)
	}
}

func TestDefaultAdminUser(t *testing.T) {
	base := start(t, httpserver.Config{AdminPassword: "pw"}, newEnv(t).deps())
	if got := do(t, base, request{path: "/monitoring/", user: "admin", pass: "pw"}); got.code != 200 {
		t.Errorf("admin/pw: %d", got.code)
	}
}

func TestLoopbackWithoutPasswordServesAdminPages(t *testing.T) {
	base := start(t, httpserver.Config{}, newEnv(t).deps())
	if got := do(t, base, request{path: "/monitoring/"}); got.code != 200 || !strings.Contains(got.body, "<html") {
		t.Errorf("/monitoring/: %d %.80q", got.code, got.body)
	}
	if got := do(t, base, request{path: "/monitoring/", header: map[string]string{"Host": "localhost:8080"}}); got.code != 200 {
		t.Errorf("/monitoring/ as localhost: %d", got.code)
	}
	// A public name that resolves to the loopback address (DNS rebinding)
	// gets nothing.
	got := do(t, base, request{path: "/monitoring/api/queues", header: map[string]string{"Host": "evil.example:8080"}})
	if want := "Forbidden: without ADMIN_PASSWORD the admin pages answer only to localhost.\n"; got.code != 403 || got.body != want {
		t.Errorf("/monitoring/api/queues for Host evil.example: %d %q, want 403 %q", got.code, got.body, want)
	}
}

func TestPublicAddressWithoutPasswordRefused(t *testing.T) {
	e := newEnv(t)
	for _, addr := range []string{":8080", "0.0.0.0:8080", "[::]:8080", "192.0.2.1:8080", "example.com:8080"} {
		_, err := httpserver.New(httpserver.Config{Addr: addr}, e.deps(), slog.New(slog.DiscardHandler))
		want := fmt.Sprintf("HTTP_ADDR %q is not a loopback address and ADMIN_PASSWORD is not set: set ADMIN_PASSWORD to protect the admin pages, or listen on HTTP_ADDR=127.0.0.1:8080", addr)
		if err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %s", addr, err, want)
		}
	}
	for _, addr := range []string{"127.0.0.1:8080", "[::1]:8080", "localhost:8080", "127.0.0.2:8080"} {
		if err := (httpserver.Config{Addr: addr}).Validate(); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
	if err := (httpserver.Config{Addr: "0.0.0.0:8080", AdminPassword: "pw"}).Validate(); err != nil {
		t.Errorf("public address with a password: %v", err)
	}
	if err := (httpserver.Config{}).Validate(); err != nil {
		t.Errorf("default address without a password: %v", err)
	}
}

func TestStartReturnsListenErrors(t *testing.T) {
	e := newEnv(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tt := range []struct{ addr, want string }{
		{busy.Addr().String(), fmt.Sprintf("http: listen tcp %s: bind: address already in use", busy.Addr())},
		{"127.0.0.1:99999", "http: listen tcp: address 99999: invalid port"},
	} {
		s, err := httpserver.New(httpserver.Config{Addr: tt.addr}, e.deps(), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(context.Background()); err == nil || err.Error() != tt.want {
			t.Errorf("Start on %s: got %v, want %s", tt.addr, err, tt.want)
		}
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("Stop after a failed Start: %v", err)
		}
	}
}

// queueWithTask puts a task on queue "default", so the dashboard has a
// queue to pause.
func queueWithTask(t *testing.T, rdb *redis.Client) *asynq.Inspector {
	t.Helper()
	c := asynq.NewClientFromRedisClient(rdb)
	if _, err := c.Enqueue(asynq.NewTask("test", nil), asynq.Queue("default")); err != nil {
		t.Fatal(err)
	}
	return asynq.NewInspectorFromRedisClient(rdb)
}

func paused(t *testing.T, in *asynq.Inspector) bool {
	t.Helper()
	info, err := in.GetQueueInfo("default")
	if err != nil {
		t.Fatal(err)
	}
	return info.Paused
}

const pausePath = "/monitoring/api/queues/default:pause"

func TestReadOnlyDashboardRefusesPause(t *testing.T) {
	e := newEnv(t)
	in := queueWithTask(t, e.rdb)
	base := start(t, httpserver.Config{AdminPassword: "pw", MonitoringReadOnly: true}, e.deps())
	got := do(t, base, request{method: "POST", path: pausePath, user: "admin", pass: "pw"})
	if want := "API Server is running in read-only mode: POST request is not allowed\n"; got.code != 405 || got.body != want {
		t.Errorf("pause on a read-only dashboard: %d %q, want 405 %q", got.code, got.body, want)
	}
	if paused(t, in) {
		t.Error("queue paused through a read-only dashboard")
	}
	if got := do(t, base, request{path: "/monitoring/api/queues/default", user: "admin", pass: "pw"}); got.code != 200 {
		t.Errorf("reading a queue on a read-only dashboard: %d %q", got.code, got.body)
	}
}

func TestCrossSiteRequestsRefused(t *testing.T) {
	e := newEnv(t)
	in := queueWithTask(t, e.rdb)
	base := start(t, httpserver.Config{AdminPassword: "pw"}, e.deps())
	const forbidden = "Forbidden: a request from another site cannot change anything here.\n"
	for _, h := range []map[string]string{
		{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
		{"Origin": "https://evil.example"},             // an older browser
		{"Origin": "null"},                             // a sandboxed frame
		{"Sec-Fetch-Site": "same-site"},                // a sibling subdomain
		{"Sec-Fetch-Site": "cross-site", "Origin": ""}, // no Origin sent
	} {
		h["Content-Type"] = "text/plain" // a "simple" request: no preflight
		for _, creds := range []bool{true, false} {
			r := request{method: "POST", path: pausePath, header: h, body: strings.NewReader("x")}
			if creds {
				r.user, r.pass = "admin", "pw"
			}
			if got := do(t, base, r); got.code != 403 || got.body != forbidden {
				t.Errorf("POST with %v (credentials %t): %d %q, want 403", h, creds, got.code, got.body)
			}
		}
	}
	if paused(t, in) {
		t.Fatal("queue paused by a cross-site request")
	}
	// The same request from the dashboard's own page goes through.
	host := strings.TrimPrefix(base, "http://")
	for _, h := range []map[string]string{{"Sec-Fetch-Site": "same-origin"}, {"Origin": base}, {}} {
		got := do(t, base, request{method: "POST", path: pausePath, header: h, user: "admin", pass: "pw"})
		if got.code != 204 || !paused(t, in) {
			t.Errorf("same-origin pause with %v to %s: %d %q, paused %t", h, host, got.code, got.body, paused(t, in))
		}
		got = do(t, base, request{method: "POST", path: "/monitoring/api/queues/default:resume", header: h, user: "admin", pass: "pw"})
		if got.code != 204 || paused(t, in) {
			t.Errorf("same-origin resume with %v to %s: %d %q, paused %t", h, host, got.code, got.body, paused(t, in))
		}
	}
}

func TestHealthz(t *testing.T) {
	e := newEnv(t)
	deps := e.deps()
	deps.Leader = func() bool { return true }
	base := start(t, httpserver.Config{AdminPassword: "pw"}, deps)
	got := do(t, base, request{path: "/healthz"})
	if want := `{"postgres":"ok","redis":"ok","scheduler_leader":true}` + "\n"; got.code != 200 || got.body != want || got.header.Get("Content-Type") != "application/json" {
		t.Errorf("/healthz: %d %q %q, want 200 %q", got.code, got.header.Get("Content-Type"), got.body, want)
	}
}

func TestHealthzHidesErrorsFromAnonymousCallers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// A store whose pool is closed, and Redis on a port nothing listens on.
	down, err := store.Open(ctx, testenv.DatabaseURL(t), store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	down.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	rdb := redis.NewClient(&redis.Options{Addr: closed, MaxRetries: -1, DialerRetries: 1})
	defer rdb.Close()
	pgErr, redisErr := down.Ping(ctx).Error(), rdb.Ping(ctx).Err().Error()
	if !strings.HasPrefix(pgErr, "ping PostgreSQL at ") || !strings.Contains(redisErr, closed) {
		t.Fatalf("errors do not name the hosts, the test proves nothing: %q %q", pgErr, redisErr)
	}
	smtp := httpserver.Check{Name: "smtp", Check: func(context.Context) error { return errors.New("dial smtp.example.com:587: connection refused") }}
	deps := httpserver.Deps{Store: down, Redis: rdb, Metrics: metrics.New().Handler()}

	anonymous := `{"postgres":"unavailable","redis":"unavailable","smtp":"unavailable"}` + "\n"
	detail := fmt.Sprintf(`{"postgres":%q,"redis":%q,"smtp":"dial smtp.example.com:587: connection refused"}`+"\n", pgErr, redisErr)

	base := start(t, httpserver.Config{AdminPassword: "pw", Checks: []httpserver.Check{smtp}}, deps)
	for _, tt := range []struct {
		name       string
		user, pass string
		want       string
	}{
		{"anonymous", "", "", anonymous},
		{"wrong password", "admin", "nope", anonymous},
		{"admin", "admin", "pw", detail},
	} {
		got := do(t, base, request{path: "/healthz", user: tt.user, pass: tt.pass})
		if got.code != 503 || got.body != tt.want {
			t.Errorf("%s: %d %s, want 503 %s", tt.name, got.code, got.body, tt.want)
		}
	}

	// On loopback without a password, local callers are admins.
	local := start(t, httpserver.Config{Checks: []httpserver.Check{smtp}}, deps)
	if got := do(t, local, request{path: "/healthz"}); got.code != 503 || got.body != detail {
		t.Errorf("loopback without password: %d %s, want 503 %s", got.code, got.body, detail)
	}
	if got := do(t, local, request{path: "/healthz", header: map[string]string{"Host": "evil.example"}}); got.code != 503 || got.body != anonymous {
		t.Errorf("loopback without password, Host evil.example: %d %s, want 503 %s", got.code, got.body, anonymous)
	}

	// One failing extra check is enough for a 503.
	deps = e.deps()
	got := do(t, start(t, httpserver.Config{AdminPassword: "pw", Checks: []httpserver.Check{smtp}}, deps), request{path: "/healthz"})
	if want := `{"postgres":"ok","redis":"ok","smtp":"unavailable"}` + "\n"; got.code != 503 || got.body != want {
		t.Errorf("failing extra check: %d %s, want 503 %s", got.code, got.body, want)
	}
}

func TestBadChecksRefused(t *testing.T) {
	ok := func(context.Context) error { return nil }
	for _, tt := range []struct {
		checks []httpserver.Check
		want   string
	}{
		{[]httpserver.Check{{Name: "redis", Check: ok}}, `health check "redis": name already used`},
		{[]httpserver.Check{{Name: "smtp", Check: ok}, {Name: "smtp", Check: ok}}, `health check "smtp": name already used`},
		{[]httpserver.Check{{Name: "", Check: ok}}, `health check "": a check needs a name and a function`},
		{[]httpserver.Check{{Name: "smtp"}}, `health check "smtp": a check needs a name and a function`},
	} {
		if err := (httpserver.Config{Checks: tt.checks}).Validate(); err == nil || err.Error() != tt.want {
			t.Errorf("got %v, want %s", err, tt.want)
		}
	}
}

func TestMetricsToken(t *testing.T) {
	e := newEnv(t)
	open := start(t, httpserver.Config{}, e.deps())
	if got := do(t, open, request{path: "/metrics"}); got.code != 200 || !strings.Contains(got.body, "go_goroutines") {
		t.Errorf("/metrics without a token set: %d", got.code)
	}

	base := start(t, httpserver.Config{MetricsToken: "scrape-me"}, e.deps())
	for _, auth := range []string{"", "Bearer wrong", "Bearer scrape-me-not", "Basic c2NyYXBlLW1l", "scrape-me", "Bearer "} {
		h := map[string]string{}
		if auth != "" {
			h["Authorization"] = auth
		}
		got := do(t, base, request{path: "/metrics", header: h})
		if got.code != 401 || got.body != unauthorized || got.header.Get("WWW-Authenticate") != `Bearer realm="metrics"` {
			t.Errorf("Authorization %q: %d %q %q", auth, got.code, got.body, got.header.Get("WWW-Authenticate"))
		}
	}
	if got := do(t, base, request{path: "/metrics", header: map[string]string{"Authorization": "Bearer scrape-me"}}); got.code != 200 || !strings.Contains(got.body, "go_goroutines") {
		t.Errorf("/metrics with the token: %d", got.code)
	}
}

// chunked hides a reader's length, so the body is sent chunked.
type chunked struct{ io.Reader }

func TestBodyLimit(t *testing.T) {
	deps := newEnv(t).deps()
	deps.Public = map[string]http.Handler{"/echo": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read failed: "+err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d bytes", len(b))
	})}
	base := start(t, httpserver.Config{AdminPassword: "pw", MaxBody: 1024}, deps)
	const tooLarge = "Request body too large.\n"
	for _, tt := range []struct {
		name string
		r    request
	}{
		{"declared length, public page", request{method: "POST", path: "/echo", body: strings.NewReader(strings.Repeat("x", 1025))}},
		{"chunked, public page", request{method: "POST", path: "/echo", body: chunked{strings.NewReader(strings.Repeat("x", 4096))}}},
		{"declared length, dashboard", request{method: "POST", path: pausePath, user: "admin", pass: "pw", body: strings.NewReader(strings.Repeat("x", 2048))}},
		{"declared length, anonymous", request{method: "POST", path: pausePath, body: strings.NewReader(strings.Repeat("x", 2048))}},
	} {
		if got := do(t, base, tt.r); got.code != 413 || got.body != tooLarge {
			t.Errorf("%s: %d %q, want 413 %q", tt.name, got.code, got.body, tooLarge)
		}
	}
	for _, body := range []io.Reader{strings.NewReader(strings.Repeat("x", 1024)), chunked{strings.NewReader(strings.Repeat("x", 1024))}} {
		if got := do(t, base, request{method: "POST", path: "/echo", body: body}); got.code != 200 || got.body != "1024 bytes" {
			t.Errorf("body at the limit (%T): %d %q", body, got.code, got.body)
		}
	}
}

func TestTimeoutsAndDefaults(t *testing.T) {
	e := newEnv(t)
	s, err := httpserver.New(httpserver.Config{}, e.deps(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h := s.HTTPServer()
	if h.Addr != "127.0.0.1:8080" || h.ReadHeaderTimeout != 10*time.Second || h.ReadTimeout != 30*time.Second || h.WriteTimeout != 60*time.Second || h.IdleTimeout != 120*time.Second {
		t.Errorf("defaults: addr %q read header %s read %s write %s idle %s", h.Addr, h.ReadHeaderTimeout, h.ReadTimeout, h.WriteTimeout, h.IdleTimeout)
	}
	s, err = httpserver.New(httpserver.Config{Addr: "127.0.0.1:9999", ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 3 * time.Second, IdleTimeout: 4 * time.Second}, e.deps(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h = s.HTTPServer()
	if h.Addr != "127.0.0.1:9999" || h.ReadHeaderTimeout != time.Second || h.ReadTimeout != 2*time.Second || h.WriteTimeout != 3*time.Second || h.IdleTimeout != 4*time.Second {
		t.Errorf("configured: addr %q read header %s read %s write %s idle %s", h.Addr, h.ReadHeaderTimeout, h.ReadTimeout, h.WriteTimeout, h.IdleTimeout)
	}
}

func TestPanicAnswersPlainPage(t *testing.T) {
	deps := newEnv(t).deps()
	deps.Public = map[string]http.Handler{"/boom": http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("secret detail")
	})}
	base := start(t, httpserver.Config{}, deps)
	got := do(t, base, request{path: "/boom"})
	if got.code != 500 || got.body != "Internal Server Error\n" || got.header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("panic: %d %q %q", got.code, got.header.Get("Content-Type"), got.body)
	}
}

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
	}{
		{"1", 1}, {"10485760", 10 << 20}, {"10MiB", 10 << 20}, {"10 MiB", 10 << 20}, {"512KiB", 512 << 10},
		{"1GiB", 1 << 30}, {"2kB", 2000}, {"3MB", 3000000}, {"1GB", 1000000000}, {"7B", 7},
	} {
		if got, err := httpserver.ParseSize(tt.in); err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	const want = "want bytes, or a whole number with a unit (B, kB, MB, GB, KiB, MiB, GiB) such as 10MiB"
	for _, tt := range []struct{ in, err string }{
		{"", `invalid size "": ` + want},
		{"ten", `invalid size "ten": ` + want},
		{"10mb", `invalid size "10mb": ` + want},
		{"10 M", `invalid size "10 M": ` + want},
		{"1.5MiB", `invalid size "1.5MiB": ` + want},
		{"-1", `invalid size "-1": ` + want},
		{"MiB", `invalid size "MiB": ` + want},
		{"0", `invalid size "0": must be positive`},
		{"9223372036854775807KiB", `invalid size "9223372036854775807KiB": too large`},
		{"99999999999999999999", `invalid size "99999999999999999999": too large`},
	} {
		if _, err := httpserver.ParseSize(tt.in); err == nil || err.Error() != tt.err {
			t.Errorf("ParseSize(%q): got %v, want %s", tt.in, err, tt.err)
		}
	}
}

func TestPprof(t *testing.T) {
	e := newEnv(t)
	off := start(t, httpserver.Config{AdminPassword: "pw"}, e.deps())
	if got := do(t, off, request{path: "/debug/pprof/", user: "admin", pass: "pw"}); got.code != 404 {
		t.Errorf("/debug/pprof/ without Pprof: %d, want 404", got.code)
	}
	on := start(t, httpserver.Config{AdminPassword: "pw", Pprof: true}, e.deps())
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1"} {
		if got := do(t, on, request{path: path}); got.code != 401 || got.body != unauthorized {
			t.Errorf("%s without credentials: %d %q", path, got.code, got.body)
		}
	}
	if got := do(t, on, request{path: "/debug/pprof/", user: "admin", pass: "pw"}); got.code != 200 || !strings.Contains(got.body, "goroutine") {
		t.Errorf("/debug/pprof/ with credentials: %d %.80q", got.code, got.body)
	}
	if got := do(t, on, request{path: "/debug/pprof/goroutine?debug=1", user: "admin", pass: "pw"}); got.code != 200 || !strings.Contains(got.body, "goroutine profile") {
		t.Errorf("/debug/pprof/goroutine with credentials: %d %.80q", got.code, got.body)
	}
	if got := do(t, on, request{path: "/debug/pprof/cmdline", user: "admin", pass: "pw"}); got.code != 200 || got.body == "" {
		t.Errorf("/debug/pprof/cmdline with credentials: %d %q", got.code, got.body)
	}
}
