package store

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"nurture/internal/audience"
)

// StageEntry is a customer seen entering a stage by a sweep.
type StageEntry struct {
	CustomerID string
	Stage      string
	ObservedAt time.Time
}

// StageChange is one change of a customer's stage, as recorded by a sweep.
type StageChange struct {
	// From is "" for the customer's first recorded stage.
	From, To   string
	ObservedAt time.Time
	// Entry says the change is an entry into To for stage triggers; a
	// first recorded stage is a baseline, not an entry, unless the
	// customer was created after the previous sweep.
	Entry bool
}

// SweepResult is what one stage sweep saw and recorded.
type SweepResult struct {
	At time.Time
	// Customers is how many customers' stages were evaluated; Failed how
	// many of them could not be (their stage is left as stored).
	Customers, Failed int
	// Baselines and Changes count first recorded stages that are not
	// entries, and every other change (each is an entry).
	Baselines, Changes int
	// Entries counts entries: changes, and first stages of customers
	// created after the previous sweep.
	Entries int
	// Refused is set when At is before the latest sweep (Latest): history
	// never moves backwards, so nothing was recorded.
	Refused bool
	Latest  time.Time
}

// stageTotal is how many customers a sweep saw in a stage (those whose
// stage failed in their stored one) and the sum of their total_spent.
type stageTotal struct {
	customers int64
	spent     float64
}

// SweepOptions tunes SweepStages.
type SweepOptions struct {
	// DryRun records nothing: Entry is called with each entry the sweep
	// would record.
	DryRun bool
	Entry  func(StageEntry)
	// Customer limits a dry run to the customer with this id.
	Customer string
}

// SweepStages records each customer's stage at the instant at, as stageOf
// tells it (a customer for whom it fails keeps the stored stage), writing only changes from the stage stored by earlier sweeps.
// A customer's first recorded stage is a baseline, unless the customer was
// created after the previous sweep, which makes it an entry; with no
// previous sweep every first stage is a baseline. A sweep at an instant
// before the latest sweep records nothing and says so (Refused). One
// sweep runs at a time across processes; the changes are written in one
// transaction with COPY, and customers stream from a second connection,
// so memory does not grow with the number of customers.
func (s *Store) SweepStages(ctx context.Context, at time.Time, stageOf func(*audience.Customer) (string, error), opts SweepOptions) (SweepResult, error) {
	at = at.UTC()
	if opts.DryRun {
		return s.sweepDry(ctx, at, stageOf, opts)
	}
	res := SweepResult{At: at}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("stage sweep: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, s.q.get(qSweepLock)); err != nil {
		return res, fmt.Errorf("stage sweep: wait for another sweep: %w", err)
	}
	var latest, previous pgtype.Timestamptz
	if err := tx.QueryRow(ctx, s.q.get(qSweepTimes), at).Scan(&latest, &previous); err != nil {
		return res, fmt.Errorf("stage sweep: %w", err)
	}
	if latest.Valid && at.Before(latest.Time) {
		res.Refused, res.Latest = true, latest.Time.UTC()
		return res, nil
	}
	if _, err := tx.Exec(ctx, s.q.get(qSweepTable)); err != nil {
		return res, fmt.Errorf("stage sweep: %w", err)
	}

	// Customers stream from another connection into a COPY on this one.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	totals := map[string]*stageTotal{}
	src := &changeSource{ch: make(chan sweepChange, 1024)}
	readErr := make(chan error, 1)
	go func() {
		defer close(src.ch)
		err := s.sweepRead(rctx, at, timePtr(previous), "", stageOf, &res, totals, func(c sweepChange) error {
			select {
			case src.ch <- c:
				return nil
			case <-rctx.Done():
				return rctx.Err()
			}
		})
		readErr <- err
	}()
	_, copyErr := tx.CopyFrom(ctx, pgx.Identifier{"sweep_changes"}, []string{"customer_id", "from_stage", "to_stage", "entry"}, src)
	cancel() // a failed COPY stops the reader
	for range src.ch {
	}
	if err := <-readErr; err != nil && copyErr == nil {
		copyErr = err
	}
	if copyErr != nil {
		return SweepResult{At: at}, fmt.Errorf("stage sweep at %s: %w", at.Format(time.RFC3339), copyErr)
	}
	if _, err := tx.Exec(ctx, s.q.get(qSweepApply), at); err != nil {
		return SweepResult{At: at}, fmt.Errorf("stage sweep: record changes: %w", err)
	}
	if _, err := tx.Exec(ctx, s.q.get(qSweepRecord), at, res.Customers, res.Baselines+res.Changes, res.Entries); err != nil {
		return SweepResult{At: at}, fmt.Errorf("stage sweep: %w", err)
	}
	// The results pages read these two small tables, never customers.
	if _, err := tx.Exec(ctx, s.q.get(qSweepFlows), at); err != nil {
		return SweepResult{At: at}, fmt.Errorf("stage sweep: record flows: %w", err)
	}
	stages, counts, spent := make([]string, 0, len(totals)), make([]int64, 0, len(totals)), make([]float64, 0, len(totals))
	for stage, t := range totals {
		stages, counts, spent = append(stages, stage), append(counts, t.customers), append(spent, math.Round(t.spent*100)/100)
	}
	if _, err := tx.Exec(ctx, s.q.get(qSweepCountsClear), at); err != nil {
		return SweepResult{At: at}, fmt.Errorf("stage sweep: record stage counts: %w", err)
	}
	if _, err := tx.Exec(ctx, s.q.get(qSweepCounts), at, stages, counts, spent); err != nil {
		return SweepResult{At: at}, fmt.Errorf("stage sweep: record stage counts: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return SweepResult{At: at}, fmt.Errorf("stage sweep: %w", err)
	}
	return res, nil
}

// sweepDry is SweepStages writing nothing.
func (s *Store) sweepDry(ctx context.Context, at time.Time, stageOf func(*audience.Customer) (string, error), opts SweepOptions) (SweepResult, error) {
	res := SweepResult{At: at}
	var latest, previous pgtype.Timestamptz
	if err := s.pool.QueryRow(ctx, s.q.get(qSweepTimes), at).Scan(&latest, &previous); err != nil {
		return res, fmt.Errorf("simulated stage sweep: %w", err)
	}
	if latest.Valid && at.Before(latest.Time) {
		res.Refused, res.Latest = true, latest.Time.UTC()
		return res, nil
	}
	err := s.sweepRead(ctx, at, timePtr(previous), opts.Customer, stageOf, &res, nil, func(c sweepChange) error {
		if c.entry && opts.Entry != nil {
			opts.Entry(StageEntry{CustomerID: c.customerID, Stage: c.to, ObservedAt: at})
		}
		return nil
	})
	if err != nil {
		return SweepResult{At: at}, fmt.Errorf("simulated stage sweep at %s: %w", at.Format(time.RFC3339), err)
	}
	return res, nil
}

type sweepChange struct {
	customerID string
	from       *string // nil: first recorded stage
	to         string
	entry      bool
}

// sweepRead evaluates every customer's stage (or only the one whose id is
// customer, when it is not "") and calls emit for each that differs from
// the stored one, counting into res, and into totals (when not nil) each
// customer's stage after the sweep with what they spent.
func (s *Store) sweepRead(ctx context.Context, at time.Time, previous *time.Time, customer string, stageOf func(*audience.Customer) (string, error), res *SweepResult, totals map[string]*stageTotal, emit func(sweepChange) error) error {
	count := func(stage string, spent float64) {
		if totals == nil {
			return
		}
		t := totals[stage]
		if t == nil {
			t = &stageTotal{}
			totals[stage] = t
		}
		t.customers++
		t.spent += spent
	}
	query, args := s.q.get(qSweepCustomers), []any(nil)
	if customer != "" {
		query, args = s.q.get(qSweepCustomer), []any{customer}
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var current pgtype.Text
	cr, err := newCustomerRow(rows, map[string]any{"current_stage": &current})
	if err != nil {
		return err
	}
	for rows.Next() {
		if err := cr.scan(rows); err != nil {
			return err
		}
		res.Customers++
		stage, err := stageOf(&cr.Customer)
		if err != nil {
			res.Failed++
			if current.Valid {
				count(current.String, cr.Customer.TotalSpent)
			}
			continue
		}
		count(stage, cr.Customer.TotalSpent)
		c := sweepChange{customerID: cr.Customer.ID, to: stage}
		switch {
		case current.Valid && current.String == stage:
			continue
		case current.Valid:
			from := current.String
			c.from, c.entry = &from, true
			res.Changes++
		case previous != nil && cr.Customer.CreatedAt.After(*previous):
			c.entry = true // new since the previous sweep: an entry
			res.Changes++
		default:
			res.Baselines++
		}
		if c.entry {
			res.Entries++
		}
		if err := emit(c); err != nil {
			return err
		}
	}
	return rows.Err()
}

// changeSource feeds a COPY from a channel.
type changeSource struct {
	ch  chan sweepChange
	cur sweepChange
}

func (c *changeSource) Next() bool {
	var ok bool
	c.cur, ok = <-c.ch
	return ok
}

func (c *changeSource) Values() ([]any, error) {
	var from any
	if c.cur.from != nil {
		from = *c.cur.from
	}
	return []any{c.cur.customerID, from, c.cur.to, c.cur.entry}, nil
}

func (c *changeSource) Err() error { return nil }

// StageHistory returns the customer's recorded stage changes, oldest
// first: the first is the baseline (or the entry of a new customer).
func (s *Store) StageHistory(ctx context.Context, customerID string) ([]StageChange, error) {
	rows, err := s.pool.Query(ctx, s.q.get(qStageHistory), customerID)
	if err != nil {
		return nil, fmt.Errorf("stage history of customer %q: %w", customerID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StageChange, error) {
		var c StageChange
		err := r.Scan(&c.From, &c.To, &c.ObservedAt, &c.Entry)
		c.ObservedAt = c.ObservedAt.UTC()
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("stage history of customer %q: %w", customerID, err)
	}
	return out, nil
}
