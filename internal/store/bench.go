package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// Queries of queries/bench.sql, used by `nurture bench` only.
const (
	qBenchClearDeliveries = "bench-clear-deliveries"
	qBenchVacuum          = "bench-vacuum"
	qServerVersion        = "server-version"
)

// ScanCandidates runs the query Candidates runs for f and scans every
// column into local variables, doing nothing else, and returns the number
// of rows. It is the floor `nurture bench` compares planning with: the
// cost of reading the candidates, without decoding attributes, computing
// facts or evaluating expressions.
func (s *Store) ScanCandidates(ctx context.Context, f CandidateFilter) (int, error) {
	after, upTo := f.bounds()
	rows, err := s.pool.Query(ctx, s.q.get(qCandidates), f.Campaign, f.At, after, upTo)
	if err != nil {
		return 0, fmt.Errorf("scan candidates of campaign %q: %w", f.Campaign, err)
	}
	defer rows.Close()
	var (
		id, email, firstName, timezone string
		attributes                     []byte
		createdAt, lastActiveAt        time.Time
		ordersCount, sends             int32
		totalSpent                     float64
		firstPurchase, lastPurchase    pgtype.Timestamptz
		lastOccurrence                 pgtype.Timestamptz
	)
	n := 0
	for rows.Next() {
		if err := rows.Scan(&id, &email, &firstName, &timezone, &createdAt, &attributes,
			&ordersCount, &totalSpent, &firstPurchase, &lastPurchase, &lastActiveAt, &sends, &lastOccurrence); err != nil {
			return n, fmt.Errorf("scan candidates of campaign %q: %w", f.Campaign, err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("scan candidates of campaign %q: %w", f.Campaign, err)
	}
	return n, nil
}

// ClearDeliveries deletes every delivery, so that a benchmark can plan the
// same audience again from a clean history.
func (s *Store) ClearDeliveries(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, s.q.get(qBenchClearDeliveries)); err != nil {
		return fmt.Errorf("clear deliveries: %w", err)
	}
	return nil
}

// Vacuum runs VACUUM (ANALYZE) on every table, after a bulk load.
func (s *Store) Vacuum(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, s.q.get(qBenchVacuum)); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	return nil
}

// ServerVersion returns the PostgreSQL server's version, such as
// "15.20 (Debian 15.20-0+deb12u1)".
func (s *Store) ServerVersion(ctx context.Context) (string, error) {
	var v string
	if err := s.pool.QueryRow(ctx, s.q.get(qServerVersion)).Scan(&v); err != nil {
		return "", fmt.Errorf("server version: %w", err)
	}
	return v, nil
}
