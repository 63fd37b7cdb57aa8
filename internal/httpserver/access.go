package httpserver

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync/atomic"
)

// admin guards an admin page: cross-site requests that may change state
// are refused first, then the caller must be an admin.
func (s *Server) admin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.cross.Check(r); err != nil {
			http.Error(w, "Forbidden: a request from another site cannot change anything here.", http.StatusForbidden)
			return
		}
		if s.cfg.AdminPassword == "" {
			if !localHost(r.Host) {
				// Without a password, only a local name: a public name
				// resolving to 127.0.0.1 (DNS rebinding) gets nothing.
				http.Error(w, "Forbidden: without ADMIN_PASSWORD the admin pages answer only to localhost.", http.StatusForbidden)
				return
			}
		} else if !s.adminCredentials(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="nurture admin", charset="UTF-8"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// isAdmin reports whether r may see what admins see, without refusing it.
func (s *Server) isAdmin(r *http.Request) bool {
	if s.cfg.AdminPassword == "" {
		return localHost(r.Host)
	}
	return s.adminCredentials(r)
}

func (s *Server) adminCredentials(r *http.Request) bool {
	user, password, ok := r.BasicAuth()
	// Both compared, always, so the time taken tells nothing.
	userOK := SecretEqual(user, s.cfg.AdminUser)
	passwordOK := SecretEqual(password, s.cfg.AdminPassword)
	return ok && userOK && passwordOK
}

// metricsAuth requires the bearer MetricsToken, when one is set.
func (s *Server) metricsAuth(h http.Handler) http.Handler {
	if s.cfg.MetricsToken == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || !SecretEqual(token, s.cfg.MetricsToken) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// apiAuth lets through requests with a bearer token from APITokens,
// compared in constant time (each of them, so the time does not tell which
// matched); others are answered 401 in JSON. Without tokens the API is
// closed.
func (s *Server) apiAuth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		ok := false
		for _, t := range s.cfg.APITokens {
			if SecretEqual(token, t) && strings.EqualFold(scheme, "Bearer") {
				ok = true
			}
		}
		if !ok {
			msg := "a bearer token from API_TOKENS is required"
			if len(s.cfg.APITokens) == 0 {
				msg = "the API is closed: set API_TOKENS to open it"
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, "{\"error\":%q}\n", msg)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// SecretEqual compares secrets (tokens, passwords) in constant time,
// whatever their lengths.
func SecretEqual(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// localHost reports whether a Host header names a loopback host.
func localHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.Trim(hostport, "[]") // no port
	}
	return isLoopback(host)
}

const tooLarge = "Request body too large."

// limitBody answers 413 to a body over MaxBody: at once when its length is
// declared, or when the handler reads past the limit of a chunked body.
func (s *Server) limitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.cfg.MaxBody {
			w.Header().Set("Connection", "close")
			if jsonPath(r.URL.Path) {
				// API errors are JSON, as its callers expect.
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusRequestEntityTooLarge)
				fmt.Fprintf(w, "{\"error\":\"the body is over the limit of %d bytes\"}\n", s.cfg.MaxBody)
				return
			}
			http.Error(w, tooLarge, http.StatusRequestEntityTooLarge)
			return
		}
		lw := &limitWriter{ResponseWriter: w, json: jsonPath(r.URL.Path), limit: s.cfg.MaxBody}
		r.Body = &limitBody{ReadCloser: http.MaxBytesReader(w, r.Body, s.cfg.MaxBody), over: &lw.over}
		h.ServeHTTP(lw, r)
	})
}

// jsonPath reports whether the errors of path are JSON: the API's and the
// webhook's.
func jsonPath(path string) bool {
	return strings.HasPrefix(path, APIPrefix) || path == WebhookPath
}

// limitBody notes when a read went past the limit.
type limitBody struct {
	io.ReadCloser
	over *atomic.Bool
}

func (b *limitBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		b.over.Store(true)
	}
	return n, err
}

// limitWriter replaces the handler's answer by a 413 once its body read
// went past the limit, whatever error the handler made of that.
type limitWriter struct {
	http.ResponseWriter
	over    atomic.Bool
	wrote   bool
	replace bool
	json    bool // an API request: its errors are JSON
	limit   int64
}

func (w *limitWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	if w.over.Load() {
		w.replace = true
		h := w.ResponseWriter.Header()
		for k := range h {
			delete(h, k)
		}
		if w.json {
			h.Set("Content-Type", "application/json")
			w.ResponseWriter.WriteHeader(http.StatusRequestEntityTooLarge)
			fmt.Fprintf(w.ResponseWriter, "{\"error\":\"the body is over the limit of %d bytes\"}\n", w.limit)
			return
		}
		http.Error(w.ResponseWriter, tooLarge, http.StatusRequestEntityTooLarge)
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.replace {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *limitWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recoverPanic answers 500 with a plain page when a handler panics, and
// logs the stack instead of showing it.
func (s *Server) recoverPanic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("http handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		}()
		h.ServeHTTP(w, r)
	})
}

// JSONError describes the error of decoding a request's JSON body when it
// has a place: a syntax error (at its byte), a value of the wrong type,
// or a body that ends early. ok is false for other errors, which the
// caller words itself.
func JSONError(err error) (msg string, ok bool) {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d: %v", syntax.Offset, err), true
	case errors.As(err, &typ):
		return fmt.Sprintf("%s: want %s, not JSON %s (at byte %d)", typ.Field, typ.Type, typ.Value, typ.Offset), true
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: the body ends early", true
	}
	return "", false
}
