package store

import "github.com/jackc/pgx/v5/pgxpool"

// Pool exposes the pool to benchmarks that compare with plain pgx.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// CandidatesSQL is the query Candidates runs.
func (s *Store) CandidatesSQL() string { return s.q.get(qCandidates) }
