package store_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"nurture/internal/store"
	"nurture/internal/testenv"
	"nurture/migrations"
)

// serverAddr is host:port of the test server.
func serverAddr(t *testing.T) string {
	u, err := url.Parse(testenv.DatabaseBaseURL())
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == "" {
		return u.Hostname() + ":5432"
	}
	return u.Host
}

func TestMigrateCreatesDatabaseAndIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, _ := testenv.ScratchDatabaseURL(t, "migrate")
	applied, err := store.Migrate(ctx, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(applied, ","), strings.Join(allMigrations(t), ","); got != want {
		t.Fatalf("first Migrate applied %q, want %s", got, want)
	}
	applied, err = store.Migrate(ctx, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 0 {
		t.Fatalf("second Migrate applied %q, want nothing", applied)
	}
	st, err := store.Open(ctx, u, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}

func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, _ := testenv.ScratchDatabaseURL(t, "migrate_concurrent")
	errs := make(chan error, 3)
	total := make(chan int, 3)
	for range 3 {
		go func() {
			applied, err := store.Migrate(ctx, u, nil)
			errs <- err
			total <- len(applied)
		}()
	}
	n := 0
	for range 3 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
		n += <-total
	}
	if want := len(allMigrations(t)); n != want {
		t.Errorf("migrations applied in all = %d, want %d", n, want)
	}
}

func TestOpenRefusesPendingMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, name := testenv.ScratchDatabaseURL(t, "pending")
	if err := store.CreateDatabase(ctx, testenv.DatabaseBaseURL(), name); err != nil {
		t.Fatal(err)
	}
	_, err := store.Open(ctx, u, store.Config{})
	if !errors.Is(err, store.ErrPendingMigrations) {
		t.Fatalf("Open = %v, want ErrPendingMigrations", err)
	}
	files := allMigrations(t)
	want := fmt.Sprintf(`database %s has %d pending migration(s) (%s); run "nurture migrate"`, name, len(files), strings.Join(files, ", "))
	if err.Error() != want {
		t.Errorf("Open error:\n got %s\nwant %s", err, want)
	}
	var pe *store.PendingMigrationsError
	if !errors.As(err, &pe) || len(pe.Pending) != len(files) {
		t.Errorf("Open error %#v is not a PendingMigrationsError with every file", err)
	}
}

// allMigrations lists the embedded migration files, in order.
func allMigrations(t *testing.T) []string {
	t.Helper()
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(files) < 3 {
		t.Fatalf("embedded migrations: %v %v", files, err)
	}
	return files
}

func TestOpenMissingDatabase(t *testing.T) {
	t.Parallel()
	u, name := testenv.ScratchDatabaseURL(t, "missing")
	_, err := store.Open(context.Background(), u, store.Config{})
	if !errors.Is(err, store.ErrDatabaseMissing) {
		t.Fatalf("Open = %v, want ErrDatabaseMissing", err)
	}
	want := fmt.Sprintf(`connect to PostgreSQL at %s/%s: database %q does not exist; run "nurture migrate"`, serverAddr(t), name, name)
	if err.Error() != want {
		t.Errorf("Open error:\n got %s\nwant %s", err, want)
	}
}

func TestOpenWrongPort(t *testing.T) {
	t.Parallel()
	// A port nobody listens on: take a free one and give it back.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	start := time.Now()
	_, err = store.Open(context.Background(), "postgres://root:s3cret@"+addr+"/nurture?sslmode=disable", store.Config{ConnectTimeout: 2 * time.Second})
	if err == nil {
		t.Fatal("Open succeeded on a closed port")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Open took %s to fail", d)
	}
	want := "connect to PostgreSQL at " + addr + `/nurture: connection refused. Is PostgreSQL running? Start it with "make services", or set DATABASE_URL to a server that is.`
	if err.Error() != want {
		t.Errorf("Open error:\n got %s\nwant %s", err, want)
	}
}

func TestOpenUnknownUser(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(testenv.DatabaseBaseURL())
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User("nurture_no_such_role")
	_, err = store.Open(context.Background(), u.String(), store.Config{ConnectTimeout: 2 * time.Second})
	if err == nil {
		t.Fatal("Open succeeded for a role that does not exist")
	}
	want := fmt.Sprintf(`connect to PostgreSQL at %s%s: role "nurture_no_such_role" does not exist. Check the user and password in DATABASE_URL.`, serverAddr(t), u.Path)
	if err.Error() != want {
		t.Errorf("Open error:\n got %s\nwant %s", err, want)
	}
}

func TestOpenSilentServerTimesOut(t *testing.T) {
	t.Parallel()
	// A server that accepts connections and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	_, err = store.Open(context.Background(), "postgres://root:s3cret@"+l.Addr().String()+"/nurture?sslmode=disable", store.Config{ConnectTimeout: 300 * time.Millisecond})
	if err == nil {
		t.Fatal("Open succeeded on a silent server")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Open took %s to fail", d)
	}
	want := "connect to PostgreSQL at " + l.Addr().String() + `/nurture: no answer within 300ms. Is PostgreSQL running? Start it with "make services", or set DATABASE_URL to a server that is.`
	if err.Error() != want {
		t.Errorf("Open error:\n got %s\nwant %s", err, want)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open error shows the password: %s", err)
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	if err := st.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestTryLeader(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	const key = 42
	a, err := st.TryLeader(ctx, key)
	if err != nil || a == nil {
		t.Fatalf("first TryLeader = %v, %v; want a lease", a, err)
	}
	b, err := st.TryLeader(ctx, key)
	if err != nil || b != nil {
		t.Fatalf("second TryLeader = %v, %v; want none", b, err)
	}
	a.Release()
	a.Release()
	select {
	case <-a.Lost():
		t.Error("Release closed Lost")
	default:
	}
	c, err := st.TryLeader(ctx, key)
	if err != nil || c == nil {
		t.Fatalf("TryLeader after Release = %v, %v; want a lease", c, err)
	}
	c.Release()
}

func TestLeaseLostWhenConnectionBreaks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := testenv.DatabaseURL(t)
	st, err := store.Open(ctx, u, store.Config{LeaseCheck: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	lease, err := st.TryLeader(ctx, 7)
	if err != nil || lease == nil {
		t.Fatalf("TryLeader = %v, %v", lease, err)
	}
	defer lease.Release()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND classid = 0 AND objid = 7 AND objsubid = 1
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n)
	if err != nil || n != 1 {
		t.Fatalf("terminate the lease's backend: %d, %v", n, err)
	}
	select {
	case <-lease.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("Lost not closed after the connection broke")
	}
}
