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

// Customer returns the customer id as it is now, with Subscribed false
// when they or their address opted out and Suppressed set, or an error
// wrapping ErrNotFound.
func (s *Store) Customer(ctx context.Context, id string) (audience.Customer, error) {
	var (
		c                     audience.Customer
		orders                int32
		attrs                 []byte
		firstPur, lastPur     pgtype.Timestamptz
		createdAt, lastActive time.Time
	)
	err := s.pool.QueryRow(ctx, s.q.get(qExplainCustomer), id).Scan(&c.ID, &c.Email, &c.FirstName, &c.Timezone,
		&c.Subscribed, &c.Suppressed, &createdAt, &attrs, &orders, &c.TotalSpent, &firstPur, &lastPur, &lastActive)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("customer %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("customer %q: %w", id, err)
	}
	c.OrdersCount, c.CreatedAt, c.LastActiveAt = int(orders), createdAt.UTC(), lastActive.UTC()
	c.FirstPurchaseAt, c.LastPurchaseAt = timePtr(firstPur), timePtr(lastPur)
	if c.Attributes, err = decodeAttributes(attrs, false); err != nil {
		return c, fmt.Errorf("customer %q: %w", id, err)
	}
	return c, nil
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
