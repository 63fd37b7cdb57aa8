package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ErrNotScratch means OpenScratch was given a database whose name does not
// mark it as disposable.
var ErrNotScratch = errors.New("not a scratch database")

// scratchMarks are the words of which a scratch database's name must hold
// at least one: the demo's, the benchmark's and the tests' databases have
// them, a production database does not.
var scratchMarks = []string{"demo", "bench", "test"}

// Queries of queries/scratch.sql, run by Scratch only.
const (
	qScratchReset            = "scratch-reset"
	qScratchClearDeliveries  = "scratch-clear-deliveries"
	qScratchVacuum           = "scratch-vacuum"
	qScratchClearStages      = "scratch-clear-stages"
	qScratchShiftOrders      = "scratch-shift-orders"
	qScratchDeleteCustomers  = "scratch-delete-customers"
	qScratchCopyTable        = "scratch-copy-table"
	qScratchCopyTableIndexed = "scratch-copy-table-indexed"
	qScratchCopyDrop         = "scratch-copy-drop"
)

// Scratch is a Store on a disposable database, with the helpers that empty
// it. The demo and the benchmark use one; nothing that runs against real
// data should. OpenScratch refuses a database whose name lacks "demo",
// "bench" and "test", so a mistyped URL cannot empty a real database.
type Scratch struct {
	*Store
}

// OpenScratch is Open for a disposable database. It fails with an error
// wrapping ErrNotScratch, before connecting, when the name of the database
// in url contains none of "demo", "bench" and "test".
func OpenScratch(ctx context.Context, url string, cfg Config) (*Scratch, error) {
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	if !isScratchName(cc.Database) {
		return nil, fmt.Errorf("database %q: %w: its name must contain \"demo\", \"bench\" or \"test\" before its tables may be emptied",
			cc.Database, ErrNotScratch)
	}
	st, err := Open(ctx, url, cfg)
	if err != nil {
		return nil, err
	}
	return &Scratch{Store: st}, nil
}

func isScratchName(name string) bool {
	for _, m := range scratchMarks {
		if strings.Contains(name, m) {
			return true
		}
	}
	return false
}

// Reset deletes every customer, event, suppression and delivery.
func (s *Scratch) Reset(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, s.q.get(qScratchReset)); err != nil {
		return fmt.Errorf("reset database: %w", err)
	}
	return nil
}

// ClearDeliveries deletes every delivery and journey, so that a benchmark can plan the
// same audience again from a clean history.
func (s *Scratch) ClearDeliveries(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, s.q.get(qScratchClearDeliveries)); err != nil {
		return fmt.Errorf("clear deliveries: %w", err)
	}
	return nil
}

// Vacuum runs VACUUM (ANALYZE) on every table, after a bulk load.
func (s *Scratch) Vacuum(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, s.q.get(qScratchVacuum)); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	return nil
}

// ClearStages deletes the stage history: every recorded stage, change and
// sweep, so that the next sweep is a first one.
func (s *Scratch) ClearStages(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, s.q.get(qScratchClearStages)); err != nil {
		return fmt.Errorf("clear stages: %w", err)
	}
	return nil
}

// ShiftOrders adds delta to the orders_count of every customer whose id
// is LIKE pattern, and returns how many there were: a change of facts that
// moves stages and that the opposite delta undoes exactly.
func (s *Scratch) ShiftOrders(ctx context.Context, pattern string, delta int) (int, error) {
	tag, err := s.pool.Exec(ctx, s.q.get(qScratchShiftOrders), pattern, delta)
	if err != nil {
		return 0, fmt.Errorf("shift orders of customers %q: %w", pattern, err)
	}
	return int(tag.RowsAffected()), nil
}

// DeleteCustomers deletes every customer whose id is LIKE pattern with
// their events, deliveries, journeys and stage history, and returns how
// many customers there were.
func (s *Scratch) DeleteCustomers(ctx context.Context, pattern string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, s.q.get(qScratchDeleteCustomers), pattern).Scan(&n); err != nil {
		return 0, fmt.Errorf("delete customers %q: %w", pattern, err)
	}
	return n, nil
}

// CopyEvents copies recs, as they are, into a table of their own with the
// columns of the events table, which it drops after: without index the
// floor of importing them, and with indexed the events table's keys and
// indexes too. It returns how many rows were copied.
func (s *Scratch) CopyEvents(ctx context.Context, recs []EventRecord, indexed bool) (int, error) {
	defer s.pool.Exec(context.WithoutCancel(ctx), s.q.get(qScratchCopyDrop))
	if _, err := s.pool.Exec(ctx, s.q.get(qScratchCopyDrop)); err != nil {
		return 0, fmt.Errorf("copy events: %w", err)
	}
	table := qScratchCopyTable
	if indexed {
		table = qScratchCopyTableIndexed
	}
	if _, err := s.pool.Exec(ctx, s.q.get(table)); err != nil {
		return 0, fmt.Errorf("copy events: %w", err)
	}
	n, err := s.pool.CopyFrom(ctx, pgx.Identifier{"bench_event_copy"},
		[]string{"dedup_key", "customer_id", "type", "occurred_at", "amount", "properties"},
		pgx.CopyFromSlice(len(recs), func(i int) ([]any, error) {
			r := &recs[i]
			var amount any
			if r.Amount != nil {
				amount = *r.Amount
			}
			return []any{r.ID, r.CustomerID, r.Type, r.OccurredAt, amount, jsonObject(r.Properties)}, nil
		}))
	if err != nil {
		return 0, fmt.Errorf("copy events: %w", err)
	}
	return int(n), nil
}
