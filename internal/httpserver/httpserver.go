// Package httpserver is the HTTP role: health, metrics, the public pages
// recipients reach (unsubscribe) and the admin pages (the Asynq dashboard),
// each with the access rules of its kind.
//
// Access:
//   - /healthz: anyone; the error of a failing check only to admins.
//   - /metrics: anyone, or only with the bearer MetricsToken when it is set.
//   - public pages (Deps.Public): anyone.
//   - the API (Deps.API, under /api/v1/): a bearer token from APITokens.
//   - the bounce webhook (Deps.Webhook, at WebhookPath): checks its own
//     callers (a bearer token, or a provider's signature).
//   - admin pages (/monitoring/ and Deps.Admin): basic auth AdminUser /
//     AdminPassword; without AdminPassword, only on a loopback address. A
//     cross-site request that may change state is refused, credentials or
//     not.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"

	"nurture/internal/queue"
)

// MonitoringPath is where the Asynq dashboard is served.
const MonitoringPath = "/monitoring/"

// PprofPath is where Go's profiles are served when Config.Pprof is set.
const PprofPath = "/debug/pprof/"

// Config configures the server. Zero values take the documented defaults.
type Config struct {
	// Addr is the listen address (HTTP_ADDR). Default "127.0.0.1:8080".
	Addr string
	// AdminUser is the basic-auth user of the admin pages (ADMIN_USER).
	// Default "admin".
	AdminUser string
	// AdminPassword is the basic-auth password of the admin pages
	// (ADMIN_PASSWORD). Default empty: the admin pages are served without
	// authentication, to requests addressed to a loopback host name, and
	// only when Addr is a loopback address; on any other Addr, New refuses.
	AdminPassword string
	// MonitoringReadOnly makes the Asynq dashboard read-only
	// (MONITORING_READONLY). Default false.
	MonitoringReadOnly bool
	// Pprof serves Go's profiles (net/http/pprof) under PprofPath, with
	// the admin pages' access rules (PPROF). Default false: not served.
	Pprof bool
	// APITokens are the bearer tokens the API accepts (API_TOKENS, comma
	// separated). Default none: the API answers 401 to every request.
	APITokens []string
	// MetricsToken is the bearer token /metrics requires (METRICS_TOKEN).
	// Default empty: /metrics is open to anyone.
	MetricsToken string
	// MaxBody is the largest request body accepted, in bytes (API_MAX_BODY);
	// a larger one is answered 413. Default 10 MiB.
	MaxBody int64
	// ReadHeaderTimeout bounds reading a request's headers. Default 10s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request. Default 30s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response, from the end of the request
	// headers. Default 60s.
	WriteTimeout time.Duration
	// IdleTimeout bounds how long a kept-alive connection waits for its next
	// request. Default 120s.
	IdleTimeout time.Duration
	// HealthTimeout bounds the checks of one /healthz request. Default 2s.
	HealthTimeout time.Duration
	// Checks are health checks reported by /healthz beside PostgreSQL and
	// Redis, each under its name; a failing one answers 503. Default none.
	Checks []Check
}

// Check is a named health check.
type Check struct {
	// Name is the check's key in the /healthz JSON.
	Name string
	// Check returns an error when the component is unavailable.
	Check func(ctx context.Context) error
}

// Default listen address and body limit.
const (
	DefaultAddr    = "127.0.0.1:8080"
	DefaultMaxBody = 10 << 20
)

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.AdminUser == "" {
		c.AdminUser = "admin"
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 30 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 60 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 120 * time.Second
	}
	if c.HealthTimeout == 0 {
		c.HealthTimeout = 2 * time.Second
	}
	return c
}

// Validate reports a configuration the server refuses: an admin page that
// would be open to the network, an unusable address, a bad check.
func (c Config) Validate() error {
	c = c.withDefaults()
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR %q: %w", c.Addr, err)
	}
	if c.AdminPassword == "" && !isLoopback(host) {
		return fmt.Errorf("HTTP_ADDR %q is not a loopback address and ADMIN_PASSWORD is not set: set ADMIN_PASSWORD to protect the admin pages, or listen on HTTP_ADDR=127.0.0.1:8080", c.Addr)
	}
	if c.MaxBody < 0 {
		return fmt.Errorf("API_MAX_BODY %d: must be positive", c.MaxBody)
	}
	seen := map[string]bool{"postgres": true, "redis": true, "scheduler_leader": true}
	for _, ch := range c.Checks {
		if ch.Name == "" || ch.Check == nil {
			return fmt.Errorf("health check %q: a check needs a name and a function", ch.Name)
		}
		if seen[ch.Name] {
			return fmt.Errorf("health check %q: name already used", ch.Name)
		}
		seen[ch.Name] = true
	}
	return nil
}

// isLoopback reports whether host (an address or host name, without port)
// is a loopback one. An empty host means every interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Pinger is what /healthz asks about PostgreSQL.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Deps are the services the server reports on and the pages it serves.
type Deps struct {
	// Store is checked by /healthz as "postgres". Required.
	Store Pinger
	// Redis is checked by /healthz as "redis"; the dashboard connects with
	// its options (address, credentials, database and TLS). Required.
	Redis *redis.Client
	// Metrics serves /metrics. Required.
	Metrics http.Handler
	// Leader, when set, is reported by /healthz as "scheduler_leader".
	Leader func() bool
	// Public are pages anyone may call, by pattern (unsubscribe links).
	Public map[string]http.Handler
	// Admin are admin pages beside the dashboard, by pattern, served with
	// the dashboard's access rules.
	Admin map[string]http.Handler
	// API, when set, serves APIPrefix for callers with a bearer token
	// from APITokens.
	API http.Handler
	// Webhook, when set, serves WebhookPath; it authorizes its callers
	// itself, as a provider's signature may stand for a token.
	Webhook http.Handler
}

// WebhookPath is where Deps.Webhook is served.
const WebhookPath = "/webhooks/bounces"

// APIPrefix is where Deps.API is served.
const APIPrefix = "/api/v1/"

// Server is the HTTP server. Create it with New, run it with Start and
// Stop.
type Server struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	srv    *http.Server
	mon    *asynqmon.HTTPHandler
	cross  *http.CrossOriginProtection
	ln     net.Listener
	done   chan struct{}
	served error // what Serve returned, other than ErrServerClosed
}

// New validates cfg and builds the server; it does not listen yet.
func New(cfg Config, deps Deps, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.Redis == nil || deps.Metrics == nil {
		return nil, errors.New("httpserver: Store, Redis and Metrics are required")
	}
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, deps: deps, log: log, cross: http.NewCrossOriginProtection()}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", s.health)
	mux.Handle("/metrics", s.metricsAuth(deps.Metrics))
	for pattern, h := range deps.Public {
		mux.Handle(pattern, h)
	}
	s.mon = asynqmon.New(asynqmon.Options{
		RootPath:     MonitoringPath,
		RedisConnOpt: queue.ConnOpt(deps.Redis.Options()),
		ReadOnly:     cfg.MonitoringReadOnly,
	})
	mux.Handle(MonitoringPath, s.admin(s.mon))
	for pattern, h := range deps.Admin {
		mux.Handle(pattern, s.admin(h))
	}
	if cfg.Pprof {
		mux.Handle(PprofPath, s.admin(pprofHandler()))
	}
	if deps.API != nil {
		mux.Handle(APIPrefix, s.apiAuth(deps.API))
	}
	if deps.Webhook != nil {
		mux.Handle(WebhookPath, deps.Webhook)
	}
	s.srv = &http.Server{
		Addr:              cfg.Addr,
		Handler:           s.limitBody(s.recoverPanic(mux)),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Start binds the listen address, so that a bad address or a port in use
// is an error here, and serves in the background until Stop.
func (s *Server) Start(ctx context.Context) error {
	if s.ln != nil {
		return errors.New("http: already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	s.ln = ln
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.served = fmt.Errorf("http: serve on %s: %w", ln.Addr(), err)
			s.log.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// Addr is the address the server listens on, once started.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Done is closed when the server stops serving, after Stop or on a failure
// that Stop then returns.
func (s *Server) Done() <-chan struct{} { return s.done }

// Stop stops accepting requests and waits, until ctx ends, for those in
// progress; then it closes the dashboard's Redis connections.
func (s *Server) Stop(ctx context.Context) error {
	var errs []error
	if s.ln != nil {
		if err := s.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http: shutdown: %w", err))
			s.srv.Close()
		}
		<-s.done
		errs = append(errs, s.served)
	}
	if err := s.mon.Close(); err != nil {
		errs = append(errs, fmt.Errorf("http: close dashboard: %w", err))
	}
	return errors.Join(errs...)
}

// pprofHandler serves net/http/pprof's pages under PprofPath. (Importing
// the package registers them on http.DefaultServeMux too, which no server
// here serves.)
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(PprofPath, pprof.Index) // the index, and every named profile (heap, goroutine, ...)
	mux.HandleFunc(PprofPath+"cmdline", pprof.Cmdline)
	mux.HandleFunc(PprofPath+"profile", pprof.Profile)
	mux.HandleFunc(PprofPath+"symbol", pprof.Symbol)
	mux.HandleFunc(PprofPath+"trace", pprof.Trace)
	return mux
}
