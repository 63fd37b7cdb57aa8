package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Windows are the conversion windows of attribution: By campaign name,
// and Default for every other campaign (one no longer configured).
type Windows struct {
	By      map[string]time.Duration
	Default time.Duration
}

// AttributionResult says what one call of Attribute did.
type AttributionResult struct {
	Events      int // events read
	Conversions int // purchases attributed
	// ByCampaign are the conversions and their revenue per campaign.
	ByCampaign map[string]CampaignConversions
	// Busy says an import held the lock: the events it is writing, and
	// any after, are left for the next call.
	Busy bool
}

// CampaignConversions are the purchases attributed to one campaign.
type CampaignConversions struct {
	Conversions int
	Revenue     float64
}

// attributeBatch is how many events one attribution transaction reads,
// and attributeBatches how many transactions one Attribute runs at most.
const (
	attributeBatch   = 10_000
	attributeBatches = 20
)

// Attribute attributes the purchases imported since the last call to the
// deliveries that earned them: each purchase event goes to the customer's
// most recent delivery sent (or held out, from its send_at) at most the
// campaign's window before it, recorded as a conversion with the event's
// amount as revenue. It reads each event once, in batches, each batch in
// a transaction that excludes imports, so that none is missed. It never
// waits for an import: while one runs, or after attributeBatches batches,
// it returns what it did, and the next call goes on from there.
func (s *Store) Attribute(ctx context.Context, w Windows) (AttributionResult, error) {
	var res AttributionResult
	names := make([]string, 0, len(w.By))
	secs := make([]float64, 0, len(w.By))
	for name, d := range w.By {
		names = append(names, name)
		secs = append(secs, d.Seconds())
	}
	for range attributeBatches {
		read, err := s.attributeOnce(ctx, names, secs, w.Default.Seconds(), &res)
		if err != nil {
			return res, fmt.Errorf("attribute purchases: %w", err)
		}
		if read < attributeBatch {
			return res, nil
		}
	}
	return res, nil
}

// attributeOnce attributes one batch of events in a transaction, adding
// what it did to res once committed, and returns how many events it read:
// none when an import holds the lock.
func (s *Store) attributeOnce(ctx context.Context, names []string, secs []float64, def float64, res *AttributionResult) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var locked bool
	if err := tx.QueryRow(ctx, s.q.get(qAttributionLock)).Scan(&locked); err != nil {
		return 0, err
	}
	if !locked {
		res.Busy = true
		return 0, nil
	}
	var from int64
	if err := tx.QueryRow(ctx, s.q.get(qAttributionProgress)).Scan(&from); err != nil {
		return 0, err
	}
	rows, err := tx.Query(ctx, s.q.get(qAttribute), from, attributeBatch, names, secs, def)
	if err != nil {
		return 0, err
	}
	var (
		events   int
		campaign string
		n        int64
		revenue  float64
		by       = map[string]CampaignConversions{}
	)
	_, err = pgx.ForEachRow(rows, []any{&campaign, &n, &revenue}, func() error {
		if campaign == "" {
			events = int(n)
		} else {
			by[campaign] = CampaignConversions{Conversions: int(n), Revenue: revenue}
		}
		return nil
	})
	if err != nil || events == 0 {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	res.Events += events
	for c, v := range by {
		if res.ByCampaign == nil {
			res.ByCampaign = map[string]CampaignConversions{}
		}
		t := res.ByCampaign[c]
		t.Conversions += v.Conversions
		t.Revenue += v.Revenue
		res.ByCampaign[c] = t
		res.Conversions += v.Conversions
	}
	return events, nil
}

// ReportRow counts the deliveries of one campaign, variant, step, status
// and reason.
type ReportRow struct {
	Campaign, Variant string
	Step              int
	Status, Reason    string
	Deliveries        int
	// Unsubscribed counts sent deliveries followed by an opt-out through
	// the campaign's link; Bounced and Complained deliveries a bounce or
	// a complaint was recorded on; Converted deliveries with an attributed
	// purchase, whose amounts add up to Revenue.
	Unsubscribed, Bounced, Complained, Converted int
	Revenue                                      float64
	// Opened and Clicked count deliveries with a human open (or click)
	// and a human click; machine-made hits are left out.
	Opened, Clicked int
	// EntriesConverted counts the first steps whose entry earned a
	// purchase on any of its steps: for a single email the delivery
	// itself, for a journey the customer's way through it. The uplift
	// compares entries, sent against held out.
	EntriesConverted int
}

// ReportFilter selects deliveries by campaign ("" for all) and send_at in
// [Since, Until) (zero: unbounded).
type ReportFilter struct {
	Campaign     string
	Since, Until time.Time
}

// Report counts deliveries by campaign, variant, step, status and reason.
func (s *Store) Report(ctx context.Context, f ReportFilter) ([]ReportRow, error) {
	rows, err := s.pool.Query(ctx, s.q.get(qReport), optTime(f.Since), optTime(f.Until), f.Campaign)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer rows.Close()
	var out []ReportRow
	for rows.Next() {
		var r ReportRow
		var n, unsub, bounced, complained, conv, opened, clicked, entries int64
		if err := rows.Scan(&r.Campaign, &r.Variant, &r.Step, &r.Status, &r.Reason, &n, &unsub, &bounced, &complained, &conv, &r.Revenue,
			&opened, &clicked, &entries); err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		r.EntriesConverted = int(entries)
		r.Deliveries, r.Unsubscribed, r.Converted = int(n), int(unsub), int(conv)
		r.Bounced, r.Complained = int(bounced), int(complained)
		r.Opened, r.Clicked = int(opened), int(clicked)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return out, nil
}

func optTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
