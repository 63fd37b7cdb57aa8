package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"nurture/migrations"
)

// migrateTimeout bounds the connections Migrate and the database helpers
// open; migrations themselves run as long as ctx allows.
const migrateTimeout = 5 * time.Second

// Migrate creates the database named in url if it does not exist, then
// applies the pending migrations of migrations.FS. It returns the file
// names it applied, in order; none when the database is up to date.
// Concurrent calls are safe: a session advisory lock serializes them.
func Migrate(ctx context.Context, url string, log *slog.Logger) (applied []string, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = migrateTimeout
	}
	where := describe(cc)
	if err := ensureDatabase(ctx, cc, log); err != nil {
		return nil, err
	}

	db := stdlib.OpenDB(*cc)
	defer db.Close()
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 600))
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS,
		goose.WithSessionLocker(locker),
		goose.WithLogger(goose.NopLogger()),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	results, err := p.Up(ctx)
	var partial *goose.PartialError
	if errors.As(err, &partial) {
		results = partial.Applied
	}
	for _, r := range results {
		name := path.Base(r.Source.Path)
		applied = append(applied, name)
		log.Info("migration applied", "database", cc.Database, "file", name, "duration", r.Duration)
	}
	if partial != nil && partial.Failed != nil {
		return applied, fmt.Errorf("migrate %s: %s: %w", where, path.Base(partial.Failed.Source.Path), partial.Err)
	}
	if err != nil {
		return applied, fmt.Errorf("migrate %s: %w", where, err)
	}
	return applied, nil
}

// ensureDatabase creates cc's database, through the server's postgres
// database, when connecting to it says it does not exist.
func ensureDatabase(ctx context.Context, cc *pgx.ConnConfig, log *slog.Logger) error {
	where := describe(cc)
	conn, err := connect(ctx, cc)
	if err == nil {
		return conn.Close(ctx)
	}
	if !errors.Is(err, ErrDatabaseMissing) {
		return err
	}
	admin := cc.Copy()
	admin.Database = "postgres"
	if err := createDatabase(ctx, admin, cc.Database, ""); err != nil {
		return fmt.Errorf("create database %s: %w", where, err)
	}
	log.Info("database created", "database", cc.Database)
	return nil
}

// connect opens one connection, explaining a failure like Open does.
func connect(ctx context.Context, cc *pgx.ConnConfig) (*pgx.Conn, error) {
	timeout := cc.ConnectTimeout
	if timeout == 0 {
		timeout = migrateTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cc)
	if err != nil {
		return nil, connectError(describe(cc), cc.Database, err, timeout)
	}
	return conn, nil
}

// CreateDatabase creates the database name on the server of adminURL (a
// URL of any database there, usually postgres). It succeeds when the
// database already exists.
func CreateDatabase(ctx context.Context, adminURL, name string) error {
	return CloneDatabase(ctx, adminURL, name, "")
}

// CloneDatabase creates the database name as a copy of template, which
// nobody may be connected to. PostgreSQL waits a few seconds for such
// connections to end; CloneDatabase retries a little longer.
func CloneDatabase(ctx context.Context, adminURL, name, template string) error {
	cc, err := pgx.ParseConfig(adminURL)
	if err != nil {
		return fmt.Errorf("parse database URL: %w", err)
	}
	if err := createDatabase(ctx, cc, name, template); err != nil {
		return fmt.Errorf("create database %q: %w", name, err)
	}
	return nil
}

func createDatabase(ctx context.Context, admin *pgx.ConnConfig, name, template string) error {
	conn, err := connect(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	stmt := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		stmt += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	for attempt := 1; ; attempt++ {
		_, err = conn.Exec(ctx, stmt)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) {
			return err
		}
		switch {
		case template == "" && (pgErr.Code == "42P04" || pgErr.Code == "23505"):
			// duplicate_database, or unique_violation when a concurrent
			// CREATE DATABASE of the same name won the race: it exists.
			return nil
		case pgErr.Code == "55006" && attempt < 5:
			// object_in_use: someone is connected to the template.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		default:
			return err
		}
	}
}

// DropDatabase drops the database name on the server of adminURL,
// terminating its connections first. It succeeds when there is no such
// database.
func DropDatabase(ctx context.Context, adminURL, name string) error {
	cc, err := pgx.ParseConfig(adminURL)
	if err != nil {
		return fmt.Errorf("parse database URL: %w", err)
	}
	conn, err := connect(ctx, cc)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %q: %w", name, err)
	}
	return nil
}

// migrationFiles lists the embedded migrations by version.
func migrationFiles() (map[int64]string, error) {
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		return nil, err
	}
	out := make(map[int64]string, len(files))
	for _, f := range files {
		digits, _, _ := strings.Cut(f, "_")
		v, err := strconv.ParseInt(digits, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("migration %s: name does not start with a version number", f)
		}
		out[v] = f
	}
	return out, nil
}

// pendingMigrations lists the embedded migrations the database lacks. It
// reads goose's table without creating it, so that checking writes nothing.
func (s *Store) pendingMigrations(ctx context.Context) ([]string, error) {
	files, err := migrationFiles()
	if err != nil {
		return nil, err
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, s.q.get(qPendingVersionTable)).Scan(&exists); err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	if exists {
		rows, err := s.pool.Query(ctx, s.q.get(qAppliedVersions))
		if err != nil {
			return nil, fmt.Errorf("read applied migrations: %w", err)
		}
		versions, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return nil, fmt.Errorf("read applied migrations: %w", err)
		}
		for _, v := range versions {
			delete(files, v)
		}
	}
	versions := make([]int64, 0, len(files))
	for v := range files {
		versions = append(versions, v)
	}
	slices.Sort(versions)
	pending := make([]string, len(versions))
	for i, v := range versions {
		pending[i] = files[v]
	}
	return pending, nil
}
