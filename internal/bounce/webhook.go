package bounce

import (
	"bytes"
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
)

// Path is where the HTTP role serves the webhook.
const Path = "/webhooks/bounces"

// HandlerConfig configures the webhook. Zero values take the documented
// defaults.
type HandlerConfig struct {
	// Tokens are the bearer tokens callers may present (WEBHOOK_TOKENS).
	// Default none: only SNS messages with a valid signature (and
	// SNSVerify) are taken.
	Tokens []string
	// SNSVerify makes a valid SNS signature enough to take an SNS message
	// without a token (SNS_VERIFY). Default false: SNS messages need a
	// token like any other request.
	SNSVerify bool
	// SNSHostAllowed says whether a host (with its port, if the URL has
	// one) may serve SNS signing certificates and subscription
	// confirmations. Default: sns.<region>.amazonaws.com.
	SNSHostAllowed func(host string) bool
	// Client fetches signing certificates and confirms subscriptions.
	// Default: a client with a 10s timeout.
	Client *http.Client
	// Now is the clock that dates notices without a time and checks
	// certificates. Default time.Now.
	Now func() time.Time
}

// Handler serves Path: the generic JSON webhook, and SNS messages
// (recognised by their x-amz-sns-message-type header or their Type and
// TopicArn keys) carrying SES notifications.
func Handler(rec *Recorder, cfg HandlerConfig, log *slog.Logger) http.Handler {
	if cfg.SNSHostAllowed == nil {
		cfg.SNSHostAllowed = snsHost
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &webhook{rec: rec, cfg: cfg, log: log, certs: newCertCache(cfg.Client, cfg.SNSHostAllowed)}
}

type webhook struct {
	rec   *Recorder
	cfg   HandlerConfig
	log   *slog.Logger
	certs *certCache
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		if tooLarge, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is over the limit of %d bytes", tooLarge.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "could not read the body: "+err.Error())
		return
	}
	if isSNS(r, body) {
		h.sns(w, r, body)
		return
	}
	if !h.tokenOK(r) {
		h.unauthorized(w, SourceWebhook)
		return
	}
	h.generic(w, r, body)
}

// tokenOK reports whether r carries one of the tokens, as a bearer token
// or as the password of basic auth (which is how an SNS subscription URL
// can carry it). Every token is compared, in constant time.
func (h *webhook) tokenOK(r *http.Request) bool {
	var given string
	if _, password, ok := r.BasicAuth(); ok {
		given = password
	} else if scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "Bearer") {
		given = token
	} else {
		return false
	}
	ok := false
	for _, t := range h.cfg.Tokens {
		if httpserver.SecretEqual(given, t) {
			ok = true
		}
	}
	return ok
}

func (h *webhook) unauthorized(w http.ResponseWriter, source string) {
	h.rec.metrics.BounceRejected(source, "unauthorized")
	msg := "a bearer token from WEBHOOK_TOKENS is required"
	if len(h.cfg.Tokens) == 0 {
		msg = "the webhook is closed: set WEBHOOK_TOKENS to open it"
		if h.cfg.SNSVerify {
			msg = "the webhook takes only signed SNS messages: set WEBHOOK_TOKENS to open it to others"
		}
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="webhooks"`)
	writeError(w, http.StatusUnauthorized, msg)
}

// genericNotice is one item of the generic webhook.
type genericNotice struct {
	Type       string  `json:"type"`
	Email      string  `json:"email"`
	MessageID  *string `json:"message_id"`
	OccurredAt *string `json:"occurred_at"`
	Reason     *string `json:"reason"`
}

// maxReason bounds the reason kept of a notice.
const maxReason = 1000

func (h *webhook) generic(w http.ResponseWriter, r *http.Request, body []byte) {
	var items []genericNotice
	if msg := decodeOneOrMany(body, &items); msg != "" {
		h.rec.metrics.BounceRejected(SourceWebhook, "invalid")
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	array := len(body) > 0 && bytes.TrimLeft(body, " \t\r\n")[0] == '['
	if len(items) == 0 {
		h.rec.metrics.BounceRejected(SourceWebhook, "invalid")
		writeError(w, http.StatusUnprocessableEntity, "the array is empty: nothing to record")
		return
	}
	received := h.cfg.Now().UTC()
	notices := make([]Notice, len(items))
	for i, it := range items {
		n, field, msg := it.notice(received)
		if msg != "" {
			if array {
				msg = fmt.Sprintf("item %d: %s: %s", i, field, msg)
			} else {
				msg = field + ": " + msg
			}
			h.rec.metrics.BounceRejected(SourceWebhook, "invalid")
			writeError(w, http.StatusUnprocessableEntity, msg)
			return
		}
		notices[i] = n
	}
	h.record(w, r, SourceWebhook, notices)
}

// notice checks an item; a problem is returned as the field and what is
// wrong with it.
func (it genericNotice) notice(received time.Time) (n Notice, field, problem string) {
	switch it.Type {
	case Hard, Soft, Complaint:
	case "":
		return n, "type", "required: hard, soft or complaint"
	default:
		return n, "type", fmt.Sprintf("%q is not hard, soft or complaint", it.Type)
	}
	if it.Email == "" {
		return n, "email", "required: the recipient's address"
	}
	if a, err := mail.ParseAddress(it.Email); err != nil || a.Address != it.Email {
		return n, "email", fmt.Sprintf("%q is not a bare email address", it.Email)
	}
	n = Notice{Kind: it.Type, Email: strings.ToLower(it.Email), OccurredAt: received}
	if it.MessageID != nil {
		if n.MessageID = normalizeMessageID(*it.MessageID); n.MessageID == "" {
			return n, "message_id", fmt.Sprintf("%q is not a Message-ID such as <id@example.com>", *it.MessageID)
		}
	}
	if it.OccurredAt != nil {
		t, err := time.Parse(time.RFC3339, *it.OccurredAt)
		if err != nil {
			return n, "occurred_at", fmt.Sprintf("%q is not an RFC 3339 time such as 2026-11-24T09:00:00Z", *it.OccurredAt)
		}
		n.OccurredAt = t.UTC()
	}
	if it.Reason != nil {
		if len(*it.Reason) > maxReason {
			return n, "reason", fmt.Sprintf("longer than %d bytes", maxReason)
		}
		n.Reason = *it.Reason
	}
	n.Key = hashKey(n.Email, n.MessageID, n.Kind, n.OccurredAt.Format(time.RFC3339Nano))
	return n, "", ""
}

// record records notices and answers how many were new; a store failure
// answers 503, so that the sender tries again (what was recorded is not
// counted twice).
func (h *webhook) record(w http.ResponseWriter, r *http.Request, source string, notices []Notice) {
	accepted, duplicates := 0, 0
	for _, n := range notices {
		res, err := h.rec.Record(r.Context(), source, n)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "recording failed; try again later")
			return
		}
		if res.Duplicate {
			duplicates++
		} else {
			accepted++
		}
	}
	writeJSON(w, http.StatusOK, map[string]int{"accepted": accepted, "duplicates": duplicates})
}

// decodeOneOrMany decodes one object or an array of them, strictly; it
// returns what is wrong, with the position, or "".
func decodeOneOrMany[T any](body []byte, items *[]T) string {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return "the body is empty: want a JSON object or an array of them"
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var err error
	if trimmed[0] == '[' {
		err = dec.Decode(items)
	} else {
		var one T
		if err = dec.Decode(&one); err == nil {
			*items = []T{one}
		}
	}
	if err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Sprintf("unexpected data after the JSON value, at byte %d", dec.InputOffset())
	}
	return ""
}

// jsonError says what is wrong with a body, with the position.
func jsonError(err error) string {
	if msg, ok := httpserver.JSONError(err); ok {
		return msg
	}
	return "malformed JSON: " + strings.TrimPrefix(err.Error(), "json: ")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // addresses and Message-IDs hold < and >
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
