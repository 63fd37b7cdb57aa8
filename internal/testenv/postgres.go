package testenv

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"nurture/internal/store"
	"nurture/migrations"
)

// DatabaseBaseURL is the PostgreSQL server tests use, as a URL of a
// database there that exists (postgres by default), reached as the current
// user (or PGUSER), the role scripts/services.sh lets in without a
// password. Set TEST_DATABASE_URL to use another server; it must be a
// postgres:// URL.
func DatabaseBaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://127.0.0.1:5432/postgres?sslmode=disable"
}

// template is the migrated database every test database is copied from.
// Its name carries a hash of the migrations, so a changed migration gets a
// template of its own, and test processes running in parallel share it:
// store.Migrate serializes them with an advisory lock and finds nothing to
// do after the first.
var template struct {
	once sync.Once
	name string
	err  error
}

func templateDatabase(ctx context.Context) (string, error) {
	template.once.Do(func() {
		h := sha256.New()
		err := fs.WalkDir(migrations.FS, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(migrations.FS, p)
			fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
			h.Write(b)
			return err
		})
		if err != nil {
			template.err = err
			return
		}
		template.name = "nurture_template_" + hex.EncodeToString(h.Sum(nil))[:16]
		u, err := withDatabase(DatabaseBaseURL(), template.name)
		if err != nil {
			template.err = err
			return
		}
		if _, err := store.Migrate(ctx, u, nil); err != nil {
			template.err = fmt.Errorf("migrate template database: %w", err)
		}
	})
	return template.name, template.err
}

// DatabaseURL creates a fresh, migrated database for the test, named
// nurture_test_<random>, and returns its URL. The database is dropped when
// the test ends.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	u, drop, err := NewDatabase(ctx)
	if err != nil {
		t.Fatalf("test database: %v", err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	return u
}

// NewDatabase is DatabaseURL for code without a testing.TB, such as a
// TestMain: the caller must call drop.
func NewDatabase(ctx context.Context) (dbURL string, drop func() error, err error) {
	base := DatabaseBaseURL()
	tmpl, err := templateDatabase(ctx)
	if err != nil {
		return "", nil, err
	}
	name := "nurture_test_" + randomHex(8)
	u, err := withDatabase(base, name)
	if err != nil {
		return "", nil, err
	}
	if err := store.CloneDatabase(ctx, base, name, tmpl); err != nil {
		return "", nil, err
	}
	drop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return store.DropDatabase(ctx, base, name)
	}
	return u, drop, nil
}

// Store opens a store on a fresh database (see DatabaseURL), closed when
// the test ends.
func Store(t testing.TB) *store.Store {
	t.Helper()
	return StoreConfig(t, store.Config{})
}

// StoreConfig is Store with a configuration.
func StoreConfig(t testing.TB, cfg store.Config) *store.Store {
	t.Helper()
	u := DatabaseURL(t)
	st, err := store.Open(context.Background(), u, cfg)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(st.Close) // registered after the drop, so it runs first
	return st
}

// ScratchDatabaseURL returns the URL of a database on the test server that
// does not exist yet, named nurture_test_PREFIX_N, and its name; it is
// dropped when the test ends. For tests of code that creates its database.
func ScratchDatabaseURL(t testing.TB, prefix string) (dbURL, name string) {
	t.Helper()
	name = fmt.Sprintf("nurture_test_%s_%d", prefix, time.Now().UnixNano())
	base := DatabaseBaseURL()
	t.Cleanup(func() {
		if err := store.DropDatabase(context.Background(), base, name); err != nil {
			t.Error(err)
		}
	})
	u, err := withDatabase(base, name)
	if err != nil {
		t.Fatal(err)
	}
	return u, name
}

// withDatabase returns base with its database replaced by name.
func withDatabase(base, name string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("TEST_DATABASE_URL %q: want a postgres:// URL", redact(base))
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
