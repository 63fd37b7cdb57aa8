// Package bounce takes in bounces and complaints (DESIGN.md,
// "Deliverability"): a generic JSON webhook, Amazon SES notifications
// through SNS, and RFC 3464 delivery status notifications read from .eml
// or mbox files, which may also hold mailto unsubscribe requests. Each
// notice is recorded once, linked to its delivery by Message-ID, and
// applied by the store: suppression, and for a complaint an opt-out.
package bounce

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"nurture/internal/metrics"
	"nurture/internal/store"
)

// Kinds of notice.
const (
	Hard      = store.BounceHard
	Soft      = store.BounceSoft
	Complaint = store.BounceComplaint
)

// Sources of notices, as recorded and counted.
const (
	SourceWebhook = "webhook"
	SourceSES     = "ses"
	SourceDSN     = "dsn"
)

// Notice is one bounce or complaint about one recipient.
type Notice struct {
	// Key identifies the notice within its source, so that one delivered
	// twice is recorded once.
	Key string
	// Kind is Hard, Soft or Complaint.
	Kind string
	// Email is the recipient.
	Email string
	// MessageID is the Message-ID of the email, with angle brackets; ""
	// when the notice does not say.
	MessageID string
	// Reason is what the notice says went wrong.
	Reason string
	// OccurredAt is when it happened.
	OccurredAt time.Time
}

// Store is what the recorder writes to.
type Store interface {
	RecordBounce(ctx context.Context, b store.Bounce, limit store.SoftBounceLimit) (store.BounceResult, error)
}

// Recorder records notices and applies them. It is safe for concurrent
// use.
type Recorder struct {
	st      Store
	limit   func() store.SoftBounceLimit
	metrics *metrics.Metrics
	log     *slog.Logger
}

// NewRecorder returns a Recorder. limit returns the soft bounce limit in
// force (settings.yaml's soft_bounce_limit, which a reload may change); m
// may be nil.
func NewRecorder(st Store, limit func() store.SoftBounceLimit, m *metrics.Metrics, log *slog.Logger) *Recorder {
	return &Recorder{st: st, limit: limit, metrics: m, log: log}
}

// Result is what Record did with one notice.
type Result struct {
	store.BounceResult
}

// Record records and applies one notice from source. A notice recorded
// before (by its key) is a duplicate and changes nothing.
func (r *Recorder) Record(ctx context.Context, source string, n Notice) (Result, error) {
	res, err := r.st.RecordBounce(ctx, store.Bounce{Key: source + ":" + n.Key, Kind: n.Kind, Email: n.Email, MessageID: n.MessageID,
		Reason: n.Reason, Source: source, OccurredAt: n.OccurredAt}, r.limit())
	if err != nil {
		r.metrics.BounceRejected(source, "failed")
		r.log.Error("recording a bounce failed", "source", source, "kind", n.Kind, "email", n.Email, "err", err)
		return Result{}, err
	}
	if res.Duplicate {
		r.log.Info("bounce already recorded", "source", source, "kind", n.Kind, "email", n.Email, "message_id", n.MessageID)
		return Result{res}, nil
	}
	r.metrics.Bounce(n.Kind, source)
	r.log.Info("bounce recorded", "source", source, "kind", n.Kind, "email", n.Email, "message_id", n.MessageID,
		"delivery_id", res.DeliveryID, "campaign", res.Campaign, "suppressed", res.Suppressed, "unsubscribed", res.Unsubscribed)
	return Result{res}, nil
}

// hashKey is a key made of parts, none of which can run into the next.
func hashKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// normalizeMessageID returns a Message-ID in angle brackets, or "" for one
// that is not a plausible id (no @, spaces, empty).
func normalizeMessageID(id string) string {
	id = strings.TrimSpace(id)
	id = strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	if id == "" || !strings.Contains(id, "@") || strings.ContainsAny(id, " \t\r\n<>") {
		return ""
	}
	return "<" + id + ">"
}
