package testenv

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"nurture/internal/importer"
	"nurture/internal/store"
)

// FixtureAt is the instant the shared fixture's facts are written for: its
// campaigns fire at 09:00 UTC and its customers' stages are known at it.
//
// The fixture (fixture/ beside this file) holds a lifecycle, two campaigns
// (welcome: stage new, once; nudge: stage at_risk, 30..59 days inactive,
// queue "nudges"), their templates, and six customers with events.
const FixtureAt = "2026-11-24T09:00:00Z"

// Fixture returns the absolute path of a file or directory of the shared
// fixture, e.g. Fixture("campaigns").
func Fixture(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "fixture", name)
}

// ImportFixture imports the fixture's customers and events into st through
// the importer, failing the test on any bad line.
func ImportFixture(t testing.TB, st *store.Store) {
	t.Helper()
	for _, f := range []struct {
		name string
		imp  func(context.Context, *store.Store, io.Reader, string, importer.Options) (importer.Result, error)
	}{{"customers.jsonl", importer.Customers}, {"events.jsonl", importer.Events}} {
		r, err := os.Open(Fixture(f.name))
		if err != nil {
			t.Fatal(err)
		}
		// The import's clock is the fixture's instant, not the wall clock.
		now := func() time.Time { t, _ := time.Parse(time.RFC3339, FixtureAt); return t }
		res, err := f.imp(context.Background(), st, r, f.name, importer.Options{Strict: true, Now: now})
		r.Close()
		if err != nil || res.Bad > 0 {
			t.Fatalf("import fixture %s: %v %v", f.name, err, res.Problems)
		}
	}
}
