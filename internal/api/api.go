// Package api is the JSON API under /api/v1/ (DESIGN.md, "HTTP surface"):
// what outside systems call to manage suppressions and consent. Access
// (bearer tokens) is the HTTP server's business; this package speaks JSON
// to the store.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"nurture/internal/httpserver"
	"nurture/internal/importer"
	"nurture/internal/metrics"
	"nurture/internal/store"
)

// Prefix is where the API is served.
const Prefix = "/api/v1/"

// Config is what the API needs besides the store.
type Config struct {
	// Explain is the explain view of a customer at an instant, served by
	// GET /api/v1/customers/{id}; it returns store.ErrNotFound for an
	// unknown customer. Nil answers 404.
	Explain func(ctx context.Context, id string, at time.Time) (any, error)
	// Now is the clock (default time.Now): event times are checked
	// against it and customers explained at it.
	Now func() time.Time
	// Metrics counts ingested items; nil counts nothing.
	Metrics *metrics.Metrics
}

// Handler returns the API's routes, to be served under Prefix.
func Handler(st *store.Store, cfg Config, log *slog.Logger) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &api{st: st, log: log, now: cfg.Now, explain: cfg.Explain, m: cfg.Metrics, group: importer.NewGroup(st)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/customers", a.ingest("customers", a.postCustomers))
	mux.HandleFunc("POST /api/v1/events", a.ingest("events", a.postEvents))
	mux.HandleFunc("GET /api/v1/customers/{id}", a.getCustomer)
	mux.HandleFunc("GET /api/v1/suppressions", a.listSuppressions)
	mux.HandleFunc("POST /api/v1/suppressions", a.addSuppressions)
	mux.HandleFunc("DELETE /api/v1/suppressions/{email}", a.removeSuppression)
	mux.HandleFunc("DELETE /api/v1/suppressions", a.removeSuppression) // ?email=
	mux.HandleFunc("POST /api/v1/customers/{id}/subscribe", a.subscribe)
	mux.HandleFunc("DELETE /api/v1/customers/{id}", a.eraseCustomer)
	mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such API call: %s %s", r.Method, r.URL.Path))
	})
	return mux
}

type api struct {
	st      *store.Store
	log     *slog.Logger
	now     func() time.Time
	explain func(ctx context.Context, id string, at time.Time) (any, error)
	m       *metrics.Metrics
	// group writes concurrent ingest batches in shared transactions.
	group *importer.Group
}

// suppression is a suppression as the API shows and takes it.
type suppression struct {
	Email     string `json:"email"`
	Reason    string `json:"reason"`
	Source    string `json:"source"`
	CreatedAt string `json:"created_at,omitempty"`
}

func (a *api) listSuppressions(w http.ResponseWriter, r *http.Request) {
	list, err := a.st.Suppressions(r.Context())
	if err != nil {
		a.fail(w, "list suppressions", err)
		return
	}
	out := make([]suppression, 0, len(list))
	for _, sp := range list {
		out = append(out, suppression{sp.Email, sp.Reason, sp.Source, sp.CreatedAt.UTC().Format(time.RFC3339)})
	}
	writeJSON(w, http.StatusOK, out)
}

// itemError is one invalid item of a request, by its 0-based index.
type itemError struct {
	Index   int    `json:"index"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// addSuppressions takes one object or an array of them; all or nothing.
func (a *api) addSuppressions(w http.ResponseWriter, r *http.Request) {
	var items []suppression
	if !decodeOneOrMany(w, r, &items) {
		return
	}
	if len(items) == 0 {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": []itemError{{0, "", "the array is empty: nothing to suppress"}}})
		return
	}
	var problems []itemError
	for i := range items {
		it := &items[i]
		if addr, err := mail.ParseAddress(it.Email); err != nil || addr.Address != it.Email {
			problems = append(problems, itemError{i, "email", fmt.Sprintf("%q is not a bare email address", it.Email)})
		}
		if strings.TrimSpace(it.Reason) == "" {
			problems = append(problems, itemError{i, "reason", "required: why the address must not be emailed (bounce, complaint, ...)"})
		}
		if it.Source == "" {
			it.Source = "api"
		}
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": problems})
		return
	}
	sps := make([]store.Suppression, len(items))
	for i, it := range items {
		sps[i] = store.Suppression{Email: it.Email, Reason: it.Reason, Source: it.Source}
	}
	if err := a.st.SuppressAll(r.Context(), sps); err != nil {
		a.fail(w, "suppress", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"accepted": len(items)})
}

func (a *api) removeSuppression(w http.ResponseWriter, r *http.Request) {
	email := r.PathValue("email")
	if email == "" {
		email = r.URL.Query().Get("email")
	}
	if email == "" {
		writeError(w, http.StatusBadRequest, "name the address: DELETE /api/v1/suppressions/{email} or ?email=")
		return
	}
	removed, err := a.st.Unsuppress(r.Context(), email)
	if err != nil {
		a.fail(w, "unsuppress", err)
		return
	}
	if !removed {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s is not suppressed", email))
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"removed": true})
}

func (a *api) subscribe(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Source string `json:"source"`
	}
	if !decode(w, r, &body) {
		return
	}
	if strings.TrimSpace(body.Source) == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": []itemError{{0, "source",
			"required: say who asked for the re-subscription, e.g. \"support-ticket-123\""}}})
		return
	}
	id := r.PathValue("id")
	changed, err := a.st.Resubscribe(r.Context(), id, body.Source)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no customer with id %q", id))
		return
	}
	if err != nil {
		a.fail(w, "subscribe", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"changed": changed})
}

// fail answers 503 for a store error, logging it; the client sees no
// internals.
func (a *api) fail(w http.ResponseWriter, what string, err error) {
	a.log.Error("api: "+what+" failed", "err", err)
	writeError(w, http.StatusServiceUnavailable, what+" failed; try again later")
}

// decode reads one JSON object, strictly (unknown fields are errors),
// answering 400 with the position of a syntax error.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	return decodeWith(w, r, func(dec *json.Decoder, _ []byte) error { return dec.Decode(v) })
}

// decodeOneOrMany reads one object or an array of them into *items.
func decodeOneOrMany[T any](w http.ResponseWriter, r *http.Request, items *[]T) bool {
	return decodeWith(w, r, func(dec *json.Decoder, body []byte) error {
		if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '[' {
			return dec.Decode(items)
		}
		var one T
		if err := dec.Decode(&one); err != nil {
			return err
		}
		*items = []T{one}
		return nil
	})
}

// decodeWith reads the body and decodes it with fn over a strict decoder;
// anything after the value is an error.
func decodeWith(w http.ResponseWriter, r *http.Request, fn func(*json.Decoder, []byte) error) bool {
	body, ok := readBody(w, r)
	if !ok {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := fn(dec, body); err != nil {
		writeError(w, http.StatusBadRequest, jsonError(err))
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unexpected data after the JSON value, at byte %d", dec.InputOffset()))
		return false
	}
	return true
}

// readBody reads the request body; the server's body limit answers 413.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(r.Body)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is over the limit of %d bytes", tooLarge.Limit))
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, "could not read the body: "+err.Error())
		return nil, false
	}
	return body, true
}

// jsonError says what is wrong with a body, with the byte offset of a
// syntax error.
func jsonError(err error) string {
	if msg, ok := httpserver.JSONError(err); ok {
		return msg
	}
	if errors.Is(err, io.EOF) {
		return "the body is empty: want a JSON object"
	}
	return "malformed JSON: " + err.Error()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
