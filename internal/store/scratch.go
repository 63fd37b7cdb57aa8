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
	qScratchReset           = "scratch-reset"
	qScratchClearDeliveries = "scratch-clear-deliveries"
	qScratchVacuum          = "scratch-vacuum"
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

// ClearDeliveries deletes every delivery, so that a benchmark can plan the
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
