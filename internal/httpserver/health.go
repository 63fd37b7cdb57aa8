package httpserver

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
)

// health answers /healthz: each component "ok", or for a failing one
// "unavailable" (with 503). Only admins see the error itself, which names
// hosts, users and databases.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.HealthTimeout)
	defer cancel()
	checks := append([]Check{
		{Name: "postgres", Check: s.deps.Store.Ping},
		{Name: "redis", Check: func(ctx context.Context) error { return s.deps.Redis.Ping(ctx).Err() }},
	}, s.cfg.Checks...)
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() { errs[i] = c.Check(ctx) })
	}
	wg.Wait()

	detail := s.isAdmin(r)
	status := map[string]any{}
	code := http.StatusOK
	for i, c := range checks {
		switch err := errs[i]; {
		case err == nil:
			status[c.Name] = "ok"
		case detail:
			status[c.Name], code = err.Error(), http.StatusServiceUnavailable
		default:
			status[c.Name], code = "unavailable", http.StatusServiceUnavailable
		}
		if errs[i] != nil {
			// Debug only: each component logs its own trouble, rate-limited,
			// and a probe every few seconds (or anyone's) must not flood the log.
			s.log.Debug("health check failed", "check", c.Name, "err", errs[i])
		}
	}
	if s.deps.Leader != nil {
		status["scheduler_leader"] = s.deps.Leader()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(status)
}
