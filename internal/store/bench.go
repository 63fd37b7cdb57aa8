package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// qServerVersion is the query of queries/bench.sql.
const qServerVersion = "server-version"

// ScanCandidates runs the query Candidates runs for f and scans every
// column into a local variable of its type, doing nothing else, and returns
// the number of rows. It is the floor `nurture bench` compares planning
// with: the cost of reading the candidates, without decoding attributes,
// computing facts or evaluating expressions.
func (s *Store) ScanCandidates(ctx context.Context, f CandidateFilter) (int, error) {
	after, upTo := f.bounds()
	query := qCandidates
	if f.Journey {
		query = qCandidatesJourney
	}
	rows, err := s.pool.Query(ctx, s.q.get(query), f.Campaign, f.At, after, upTo)
	if err != nil {
		return 0, fmt.Errorf("scan candidates of campaign %q: %w", f.Campaign, err)
	}
	n, err := scanAll(rows)
	if err != nil {
		return n, fmt.Errorf("scan candidates of campaign %q: %w", f.Campaign, err)
	}
	return n, nil
}

// ScanDueEntries runs the query DueEntries runs for f and scans every
// column into a variable, doing nothing else, and returns the number of
// rows: the floor of planning a triggered campaign.
func (s *Store) ScanDueEntries(ctx context.Context, f DueFilter) (int, error) {
	rows, err := s.dueRows(ctx, f)
	if err != nil {
		return 0, err
	}
	n, err := scanAll(rows)
	if err != nil {
		return n, fmt.Errorf("scan due entries of campaign %q: %w", f.Campaign, err)
	}
	return n, nil
}

// ScanSweep runs the query a stage sweep reads customers with and scans
// every column into a variable, doing nothing else, and returns the number
// of rows: the floor of a sweep, which also evaluates stages and writes
// the changes.
func (s *Store) ScanSweep(ctx context.Context) (int, error) {
	rows, err := s.pool.Query(ctx, s.q.get(qSweepCustomers))
	if err != nil {
		return 0, fmt.Errorf("scan sweep customers: %w", err)
	}
	n, err := scanAll(rows)
	if err != nil {
		return n, fmt.Errorf("scan sweep customers: %w", err)
	}
	return n, nil
}

// scanAll scans every row of rows into throwaway variables, closes rows
// and returns how many there were.
func scanAll(rows pgx.Rows) (int, error) {
	defer rows.Close()
	var dest []any
	n := 0
	for rows.Next() {
		if dest == nil {
			dest = scanDest(rows.FieldDescriptions())
		}
		if err := rows.Scan(dest...); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// scanDest returns a variable of the natural Go type for each column, so
// that the bare scan follows the query when its columns change.
func scanDest(fields []pgconn.FieldDescription) []any {
	dest := make([]any, len(fields))
	for i, fd := range fields {
		switch fd.DataTypeOID {
		case pgtype.TextOID, pgtype.VarcharOID:
			dest[i] = new(pgtype.Text) // nullable: a sweep's current_stage is null at first
		case pgtype.JSONBOID, pgtype.JSONOID:
			dest[i] = new([]byte)
		case pgtype.TimestamptzOID:
			dest[i] = new(pgtype.Timestamptz)
		case pgtype.Int4OID:
			dest[i] = new(pgtype.Int4)
		case pgtype.Int8OID:
			dest[i] = new(pgtype.Int8)
		case pgtype.Float8OID:
			dest[i] = new(pgtype.Float8)
		case pgtype.BoolOID:
			dest[i] = new(pgtype.Bool)
		default:
			dest[i] = new(any)
		}
	}
	return dest
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
