package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// MachineWindow is how soon after its send a hit is taken for a
// machine's (a mail server or security gateway fetching every image and
// link of a message as it arrives): it is recorded apart and not counted.
const MachineWindow = 2 * time.Second

// Hit is one request to an open pixel or a click redirect.
type Hit struct {
	Delivery uuid.UUID
	// Click is true for a click, false for an open; URL is the click's
	// target.
	Click bool
	URL   string
	At    time.Time
	// Scanner says the user agent is a known link scanner or mail
	// security proxy: the hit is machine-made, whenever it comes.
	Scanner bool
}

// HitCount is how many hits of one kind RecordHits recorded for a
// campaign, human or machine-made. Campaign is "" for hits of deliveries
// that no longer exist, which are not recorded.
type HitCount struct {
	Campaign string
	Click    bool
	Machine  bool
	N        int
}

// RecordHits records hits in one statement: per delivery, the count and
// the first and last time of human opens and clicks, machine-made ones
// apart, and per link clicked the same. A hit is machine-made when its
// Scanner is set, or when it comes before the delivery is recorded as
// sent or less than MachineWindow after.
func (s *Store) RecordHits(ctx context.Context, hits []Hit) ([]HitCount, error) {
	if len(hits) == 0 {
		return nil, nil
	}
	ids := make([]uuid.UUID, len(hits))
	kinds := make([]string, len(hits))
	urls := make([]string, len(hits))
	ats := make([]time.Time, len(hits))
	scanners := make([]bool, len(hits))
	for i, h := range hits {
		ids[i], urls[i], ats[i], scanners[i] = h.Delivery, h.URL, h.At, h.Scanner
		kinds[i] = "open"
		if h.Click {
			kinds[i] = "click"
		}
	}
	rows, err := s.pool.Query(ctx, s.q.get(qRecordHits), ids, kinds, urls, ats, scanners, MachineWindow.Seconds())
	if err != nil {
		return nil, fmt.Errorf("record %d tracking hits: %w", len(hits), err)
	}
	defer rows.Close()
	var out []HitCount
	for rows.Next() {
		var c HitCount
		var kind string
		var n int64
		if err := rows.Scan(&c.Campaign, &kind, &c.Machine, &n); err != nil {
			return nil, fmt.Errorf("record %d tracking hits: %w", len(hits), err)
		}
		c.Click, c.N = kind == "click", int(n)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("record %d tracking hits: %w", len(hits), err)
	}
	return out, nil
}

// Tracking is what was recorded of one delivery's opens and clicks.
type Tracking struct {
	Opens                         int
	FirstOpenedAt, LastOpenedAt   *time.Time
	Clicks                        int
	FirstClickedAt, LastClickedAt *time.Time
	MachineOpens, MachineClicks   int
	LastMachineAt                 *time.Time
	// Links are the links clicked, by URL.
	Links []LinkClicks
}

// LinkClicks counts the clicks of one link of a delivery.
type LinkClicks struct {
	URL                           string
	Clicks, MachineClicks         int
	FirstClickedAt, LastClickedAt *time.Time
}

// DeliveryTracking returns what was recorded of delivery's opens and
// clicks; the zero Tracking when nothing was.
func (s *Store) DeliveryTracking(ctx context.Context, delivery uuid.UUID) (Tracking, error) {
	var t Tracking
	err := s.pool.QueryRow(ctx, s.q.get(qDeliveryTracking), delivery).Scan(&t.Opens, &t.FirstOpenedAt, &t.LastOpenedAt,
		&t.Clicks, &t.FirstClickedAt, &t.LastClickedAt, &t.MachineOpens, &t.MachineClicks, &t.LastMachineAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, nil
	}
	if err != nil {
		return t, fmt.Errorf("tracking of delivery %s: %w", delivery, err)
	}
	rows, err := s.pool.Query(ctx, s.q.get(qDeliveryClicks), delivery)
	if err != nil {
		return t, fmt.Errorf("clicks of delivery %s: %w", delivery, err)
	}
	t.Links, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (LinkClicks, error) {
		var l LinkClicks
		err := r.Scan(&l.URL, &l.Clicks, &l.MachineClicks, &l.FirstClickedAt, &l.LastClickedAt)
		return l, err
	})
	if err != nil {
		return t, fmt.Errorf("clicks of delivery %s: %w", delivery, err)
	}
	return t, nil
}
