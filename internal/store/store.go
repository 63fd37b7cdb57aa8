// Package store is nurture's PostgreSQL access: migrations, imports of
// customers and events, the planner's reads and the deliveries' life
// cycle. It is the only package that speaks to PostgreSQL; its SQL lives in
// queries/*.sql.
package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Errors callers branch on with errors.Is.
var (
	// ErrPendingMigrations means the database lacks migrations this binary
	// has; Open refuses such a database. The error is a
	// *PendingMigrationsError.
	ErrPendingMigrations = errors.New("pending migrations")
	// ErrDatabaseMissing means the database named in the URL does not exist.
	ErrDatabaseMissing = errors.New("database does not exist")
	// ErrNotFound means the row asked for does not exist.
	ErrNotFound = errors.New("not found")
)

// Config tunes a Store. The zero value is ready to use.
type Config struct {
	// MaxConns is the most connections the pool holds. Default 16.
	MaxConns int32
	// MinConns is how many connections the pool keeps open even when idle.
	// Default 0.
	MinConns int32
	// ConnectTimeout bounds Open's connectivity check and every new
	// connection. Default 5s.
	ConnectTimeout time.Duration
	// MaxConnLifetime is when a connection is closed and replaced.
	// Default 1h.
	MaxConnLifetime time.Duration
	// MaxConnIdleTime is when an idle connection is closed. Default 30m.
	MaxConnIdleTime time.Duration
	// LeaseCheck is how often a held leader lease checks its connection.
	// Default 5s.
	LeaseCheck time.Duration
	// Now is the clock that dates consent changes and erasures. Default
	// time.Now.
	Now func() time.Time
	// ErasureWait is how long Erase waits for deliveries a worker was
	// sending to the person it erases. Default 30s.
	ErasureWait time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxConns <= 0 {
		c.MaxConns = 16
	}
	if c.MinConns < 0 {
		c.MinConns = 0
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	if c.MaxConnLifetime <= 0 {
		c.MaxConnLifetime = time.Hour
	}
	if c.MaxConnIdleTime <= 0 {
		c.MaxConnIdleTime = 30 * time.Minute
	}
	if c.LeaseCheck <= 0 {
		c.LeaseCheck = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ErasureWait <= 0 {
		c.ErasureWait = 30 * time.Second
	}
	return c
}

// Store is a pool of connections to nurture's database. It is safe for
// concurrent use.
type Store struct {
	pool  *pgxpool.Pool
	cfg   Config
	q     queries
	where string // host:port/database, for messages
	// replan is how the statements that must be planned at every run are
	// sent (see freshPlans).
	replan pgx.QueryExecMode
}

// freshPlans is the query mode of statements that must not run from a
// cached plan (the trigger poll's): with pgx's default, which prepares and
// caches every statement, an unnamed statement whose description is
// cached, or described each time when the URL disables that cache; any
// other mode the URL chose plans at every run already.
func freshPlans(cc *pgx.ConnConfig) pgx.QueryExecMode {
	switch {
	case cc.DefaultQueryExecMode != pgx.QueryExecModeCacheStatement:
		return cc.DefaultQueryExecMode
	case cc.DescriptionCacheCapacity > 0:
		return pgx.QueryExecModeCacheDescribe
	default:
		return pgx.QueryExecModeDescribeExec
	}
}

// CheckURL reports what is wrong with a database URL (or keyword/value
// connection string) that Open and Migrate could not use, without
// connecting. Its error does not repeat the URL, which may hold a password.
func CheckURL(url string) error {
	if scheme, _, ok := strings.Cut(url, "://"); ok && scheme != "postgres" && scheme != "postgresql" {
		return fmt.Errorf("scheme %q, want postgres://[user[:password]@]host[:port]/database", scheme)
	}
	_, err := pgxpool.ParseConfig(url)
	var pe *pgconn.ParseConfigError
	if !errors.As(err, &pe) {
		return err
	}
	// "cannot parse `URL`: REASON"
	if _, reason, ok := strings.Cut(err.Error(), "`: "); ok {
		return errors.New(reason)
	}
	return errors.New("cannot parse it")
}

// Open connects to the database at url, checks within cfg.ConnectTimeout
// that it answers, and refuses a database that is missing migrations
// (ErrPendingMigrations) or missing altogether (ErrDatabaseMissing).
func Open(ctx context.Context, url string, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	q, err := loadQueries(queryFiles, "queries", queryNames)
	if err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	pc.MaxConns = cfg.MaxConns
	pc.MinConns = min(cfg.MinConns, cfg.MaxConns)
	pc.MaxConnLifetime = cfg.MaxConnLifetime
	pc.MaxConnIdleTime = cfg.MaxConnIdleTime
	pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	where := describe(pc.ConnConfig)

	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, connectError(where, pc.ConnConfig.Database, err, cfg.ConnectTimeout)
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, connectError(where, pc.ConnConfig.Database, err, cfg.ConnectTimeout)
	}
	s := &Store{pool: pool, cfg: cfg, q: q, where: where, replan: freshPlans(pc.ConnConfig)}
	pending, err := s.pendingMigrations(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	if len(pending) > 0 {
		pool.Close()
		return nil, &PendingMigrationsError{Database: pc.ConnConfig.Database, Pending: pending}
	}
	return s, nil
}

// Close closes every connection, waiting for those in use.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping PostgreSQL at %s: %w", s.where, err)
	}
	return nil
}

// PendingMigrationsError lists the migrations a database lacks.
type PendingMigrationsError struct {
	Database string
	Pending  []string // file names, in the order they apply
}

// Error says what is pending and how to apply it.
func (e *PendingMigrationsError) Error() string {
	return fmt.Sprintf("database %s has %d pending migration(s) (%s); run \"nurture migrate\"",
		e.Database, len(e.Pending), strings.Join(e.Pending, ", "))
}

// Is makes errors.Is(err, ErrPendingMigrations) true.
func (e *PendingMigrationsError) Is(target error) bool { return target == ErrPendingMigrations }

// databaseMissingError is ErrDatabaseMissing with the database's name.
type databaseMissingError struct{ name string }

func (e *databaseMissingError) Error() string {
	return fmt.Sprintf("database %q does not exist; run \"nurture migrate\"", e.name)
}

func (e *databaseMissingError) Is(target error) bool { return target == ErrDatabaseMissing }

// describe names a server and database as host:port/database, without
// credentials.
func describe(c *pgx.ConnConfig) string {
	host := c.Host
	if !strings.HasPrefix(host, "/") {
		host = net.JoinHostPort(host, strconv.Itoa(int(c.Port)))
	}
	return host + "/" + c.Database
}

// connectError explains a failed first contact with the server and says
// what to do about it.
func connectError(where, database string, err error, timeout time.Duration) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "3D000" { // invalid_catalog_name
		return fmt.Errorf("connect to PostgreSQL at %s: %w", where, &databaseMissingError{name: database})
	}
	msg := reason(err, timeout)
	if h := hint(err); h != "" {
		msg += ". " + h
	}
	return fmt.Errorf("connect to PostgreSQL at %s: %s", where, msg)
}

// hint is the next step after a failed connection: start a server, or
// point DATABASE_URL at one, or fix the credentials in it.
func hint(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if strings.HasPrefix(pgErr.Code, "28") { // invalid_authorization_specification, invalid_password
			return "Check the user and password in DATABASE_URL."
		}
		return ""
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return `Check the host in DATABASE_URL, or start a local server with "make services".`
	}
	return `Is PostgreSQL running? Start it with "make services", or set DATABASE_URL to a server that is.`
}

// reason is the useful part of a connection error: pgx's own text repeats
// the user and database and may be long; the server's message or the
// network error is what tells what to fix.
func reason(err error, timeout time.Duration) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return fmt.Sprintf("no answer within %s", timeout)
	}
	var sysErr *os.SyscallError // "connect: connection refused"
	if errors.As(err, &sysErr) {
		return sysErr.Err.Error()
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		if opErr.Err != nil {
			return opErr.Err.Error()
		}
		return opErr.Error()
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.Error()
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		if inner := errors.Unwrap(connectErr); inner != nil {
			return inner.Error()
		}
	}
	return err.Error()
}
