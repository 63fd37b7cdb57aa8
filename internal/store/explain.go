package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"nurture/internal/audience"
)

// CustomerHistory is one customer's history of every campaign, as of an
// instant: for single emails from their deliveries, for journeys from
// their entries.
type CustomerHistory struct {
	Emails   map[string]audience.History
	Journeys map[string]audience.History
}

// History returns customer id's history of every campaign as of at.
func (s *Store) History(ctx context.Context, id string, at time.Time) (CustomerHistory, error) {
	h := CustomerHistory{Emails: map[string]audience.History{}, Journeys: map[string]audience.History{}}
	rows, err := s.pool.Query(ctx, s.q.get(qExplainHistory), id, at)
	if err != nil {
		return h, fmt.Errorf("history of customer %q: %w", id, err)
	}
	var (
		campaign                 string
		journey, planned, active bool
		sends                    int32
		last                     pgtype.Timestamptz
	)
	_, err = pgx.ForEachRow(rows, []any{&campaign, &journey, &sends, &last, &planned, &active}, func() error {
		hist := audience.History{Sends: int(sends), LastOccurrence: timePtr(last), Planned: planned, Active: active}
		if journey {
			h.Journeys[campaign] = hist
		} else {
			h.Emails[campaign] = hist
		}
		return nil
	})
	if err != nil {
		return h, fmt.Errorf("history of customer %q: %w", id, err)
	}
	return h, nil
}

// Event returns the event whose id (dedup_key) is id, as expressions see
// it, or an error wrapping ErrNotFound.
func (s *Store) Event(ctx context.Context, id string) (*audience.Event, error) {
	var (
		ev     = &audience.Event{ID: id}
		at     time.Time
		amount pgtype.Float8
		props  []byte
	)
	err := s.pool.QueryRow(ctx, s.q.get(qEvent), id).Scan(&ev.Type, &at, &amount, &props)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("event %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("event %q: %w", id, err)
	}
	ev.OccurredAt = at.UTC()
	if amount.Valid {
		a := amount.Float64
		ev.Amount = &a
	}
	if ev.Properties, err = decodeAttributes(props, false); err != nil {
		return nil, fmt.Errorf("event %q: %w", id, err)
	}
	if ev.Properties == nil {
		ev.Properties = map[string]any{}
	}
	return ev, nil
}
