package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Kinds of bounce notices.
const (
	BounceHard      = "hard"
	BounceSoft      = "soft"
	BounceComplaint = "complaint"
)

// Bounce is one notice from a bounce or complaint feed.
type Bounce struct {
	// Key identifies the notice: a feed delivering it again is recognised
	// by it and changes nothing. Required.
	Key string
	// Kind is BounceHard, BounceSoft or BounceComplaint.
	Kind string
	// Email is the recipient it is about. Required.
	Email string
	// MessageID is the Message-ID of the email it is about, with its angle
	// brackets; "" when unknown.
	MessageID string
	// Reason is what the feed said (a diagnostic code, a feedback type).
	Reason string
	// Source is the feed: webhook, ses, dsn.
	Source string
	// OccurredAt is when it happened.
	OccurredAt time.Time
}

// SoftBounceLimit suppresses an address after Count soft bounces whose
// occurred_at is within Per before now.
type SoftBounceLimit struct {
	Count int
	Per   time.Duration
}

// BounceResult is what RecordBounce did.
type BounceResult struct {
	// Duplicate is true when the notice was recorded before: nothing was
	// done this time.
	Duplicate bool
	// DeliveryID, CustomerID and Campaign are the delivery the notice was
	// linked to by its Message-ID; "" when none matched.
	DeliveryID, CustomerID, Campaign string
	// Suppressed is true when the notice put the address on the
	// suppression list (false when it was there already).
	Suppressed bool
	// Unsubscribed lists the customers whose consent a complaint withdrew.
	Unsubscribed []string
	// Erased is true when the address is an erased person's: nothing was
	// recorded, the address being suppressed by its hash already.
	Erased bool
}

// RecordBounce records one notice, links it to its delivery by Message-ID
// and applies it, all at once: a hard bounce or a complaint suppresses the
// address (reason "bounce" or "complaint", source b.Source); a soft bounce
// does when it makes limit.Count soft bounces of the address within
// limit.Per before now (the store's clock); a complaint also unsubscribes
// the delivery's customer (or, without a delivery, every customer with the
// address), recorded with source "complaint" and the delivery's campaign.
// A notice whose Key was recorded before changes nothing.
func (s *Store) RecordBounce(ctx context.Context, b Bounce, limit SoftBounceLimit) (BounceResult, error) {
	var res BounceResult
	b.Email = strings.ToLower(strings.TrimSpace(b.Email))
	switch {
	case b.Key == "":
		return res, errors.New("record bounce: empty key")
	case b.Email == "":
		return res, errors.New("record bounce: empty email address")
	case b.Kind != BounceHard && b.Kind != BounceSoft && b.Kind != BounceComplaint:
		return res, fmt.Errorf("record bounce: unknown kind %q", b.Kind)
	case b.Source == "":
		return res, errors.New("record bounce: empty source")
	}
	what := fmt.Sprintf("record %s %s of %s", b.Source, b.Kind, b.Email)
	now := s.cfg.Now()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("%s: %w", what, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, s.q.get(qBounceLock), b.Email); err != nil {
		return res, fmt.Errorf("%s: lock: %w", what, err)
	}
	// A late notice about an erased person writes nothing in clear: the
	// address is suppressed by its hash already.
	if err := tx.QueryRow(ctx, s.q.get(qBounceErased), b.Email).Scan(&res.Erased); err != nil {
		return res, fmt.Errorf("%s: %w", what, err)
	}
	if res.Erased {
		return res, nil
	}
	var inserted bool
	var deliveryID, customerID, campaign *string
	err = tx.QueryRow(ctx, s.q.get(qBounceInsert), b.Key, b.Kind, b.Email, nullable(b.MessageID), b.Reason, b.Source,
		b.OccurredAt, now).Scan(&inserted, &deliveryID, &customerID, &campaign)
	if err != nil {
		return res, fmt.Errorf("%s: insert: %w", what, err)
	}
	if !inserted {
		return BounceResult{Duplicate: true}, nil
	}
	if deliveryID != nil {
		res.DeliveryID, res.CustomerID, res.Campaign = *deliveryID, *customerID, *campaign
		if _, err := tx.Exec(ctx, s.q.get(qBounceMarkDelivery), res.DeliveryID, b.Kind, b.OccurredAt); err != nil {
			return res, fmt.Errorf("%s: mark delivery %s: %w", what, res.DeliveryID, err)
		}
	}
	suppress := b.Kind != BounceSoft
	if b.Kind == BounceSoft && limit.Count > 0 {
		var n int
		if err := tx.QueryRow(ctx, s.q.get(qBounceSoftCount), b.Email, now.Add(-limit.Per)).Scan(&n); err != nil {
			return res, fmt.Errorf("%s: count soft bounces: %w", what, err)
		}
		suppress = n >= limit.Count
	}
	if suppress {
		reason := "bounce"
		if b.Kind == BounceComplaint {
			reason = "complaint"
		}
		var added bool
		err := tx.QueryRow(ctx, s.q.get(qBounceSuppress), b.Email, reason, b.Source, now).Scan(&added)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return res, fmt.Errorf("%s: suppress: %w", what, err)
		}
		res.Suppressed = added
	}
	if b.Kind == BounceComplaint {
		ids := []string{res.CustomerID}
		if res.CustomerID == "" {
			rows, err := tx.Query(ctx, s.q.get(qBounceCustomers), b.Email)
			if err != nil {
				return res, fmt.Errorf("%s: customers: %w", what, err)
			}
			if ids, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return res, fmt.Errorf("%s: customers: %w", what, err)
			}
		}
		for _, id := range ids {
			var found, changed bool
			if err := tx.QueryRow(ctx, s.q.get(qUnsubscribe), id, "complaint", nullable(res.Campaign), now).Scan(&found, &changed); err != nil {
				return res, fmt.Errorf("%s: unsubscribe customer %q: %w", what, id, err)
			}
			if changed {
				res.Unsubscribed = append(res.Unsubscribed, id)
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("%s: %w", what, err)
	}
	return res, nil
}

// BounceRow is a recorded notice, as Bounces lists it.
type BounceRow struct {
	DedupKey   string
	Kind       string
	Email      string
	MessageID  string
	DeliveryID string // "" when no delivery matched
	Reason     string
	Source     string
	OccurredAt time.Time // UTC
	ReceivedAt time.Time // UTC
}

// Bounces lists the recorded notices in the order they were recorded.
func (s *Store) Bounces(ctx context.Context) ([]BounceRow, error) {
	rows, err := s.pool.Query(ctx, s.q.get(qBounces))
	if err != nil {
		return nil, fmt.Errorf("bounces: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[BounceRow])
	if err != nil {
		return nil, fmt.Errorf("bounces: %w", err)
	}
	for i := range out {
		out[i].OccurredAt, out[i].ReceivedAt = out[i].OccurredAt.UTC(), out[i].ReceivedAt.UTC()
	}
	return out, nil
}

// DeliveryBounce is what a delivery records of its bounces and complaints.
type DeliveryBounce struct {
	DeliveryID   string
	Bounce       string     // hard, soft, or "" without a bounce
	BouncedAt    *time.Time // the first bounce (the hard one, once there is one)
	ComplainedAt *time.Time // the first complaint
}

// DeliveryBounces lists the deliveries that bounced or were complained
// about, by id.
func (s *Store) DeliveryBounces(ctx context.Context) ([]DeliveryBounce, error) {
	rows, err := s.pool.Query(ctx, s.q.get(qDeliveryBounces))
	if err != nil {
		return nil, fmt.Errorf("delivery bounces: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[DeliveryBounce])
	if err != nil {
		return nil, fmt.Errorf("delivery bounces: %w", err)
	}
	for i := range out {
		for _, t := range []*time.Time{out[i].BouncedAt, out[i].ComplainedAt} {
			if t != nil {
				*t = t.UTC()
			}
		}
	}
	return out, nil
}
