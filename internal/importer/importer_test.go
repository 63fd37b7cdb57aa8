package importer_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"nurture/internal/audience"
	"nurture/internal/importer"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

type importFunc func(context.Context, *store.Store, io.Reader, string, importer.Options) (importer.Result, error)

// importFile imports testdata/name with imp.
func importFile(t *testing.T, st *store.Store, imp importFunc, name string, opts importer.Options) importer.Result {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := imp(context.Background(), st, f, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func problems(res importer.Result) string {
	var b strings.Builder
	for _, p := range res.Problems {
		fmt.Fprintln(&b, p)
	}
	return b.String()
}

func golden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func counts(t *testing.T, st *store.Store) store.Counts {
	t.Helper()
	c, err := st.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// snapshot is every customer with its facts, and the table counts.
func snapshot(t *testing.T, st *store.Store) string {
	t.Helper()
	var b strings.Builder
	err := st.Customers(context.Background(), func(c *audience.Customer) error {
		fmt.Fprintf(&b, "%+v\n", *c)
		if c.FirstPurchaseAt != nil {
			fmt.Fprintf(&b, "  first %s last %s\n", c.FirstPurchaseAt, c.LastPurchaseAt)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "%+v\n", counts(t, st))
	return b.String()
}

func TestImportCustomersReportsBadLines(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	// c11 has no created_at: PostgreSQL's clock stamps it during the
	// import, which these two readings of the same machine's clock bracket.
	before := time.Now().Truncate(time.Microsecond)
	res := importFile(t, st, importer.Customers, "customers.jsonl", importer.Options{})
	after := time.Now()
	if got, want := problems(res), golden(t, "customers.problems"); got != want {
		t.Errorf("problems:\n%s\nwant:\n%s", got, want)
	}
	if res.Lines != 20 || res.Bad != 14 || res.Imported != 3 || res.Unchanged != 1 {
		t.Errorf("result = %+v, want 20 lines, 14 bad, 3 imported, 1 unchanged", res)
	}
	all := map[string]audience.Customer{}
	st.Customers(context.Background(), func(c *audience.Customer) error { all[c.ID] = *c; return nil })
	want := map[string]audience.Customer{
		"c1": {ID: "c1", Email: "ann@example.com", FirstName: "Annie", Timezone: "Europe/Paris", Subscribed: true,
			CreatedAt: time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC), LastActiveAt: time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC),
			Attributes: map[string]any{"plan": "pro"}},
		"c2": {ID: "c2", Email: "bob@example.com", Timezone: "UTC", Subscribed: true,
			CreatedAt: time.Date(2026, 1, 2, 22, 0, 0, 0, time.UTC), LastActiveAt: time.Date(2026, 1, 2, 22, 0, 0, 0, time.UTC)},
	}
	for id, w := range want {
		if !reflect.DeepEqual(all[id], w) {
			t.Errorf("customer %s:\n got %+v\nwant %+v", id, all[id], w)
		}
	}
	c11 := all["c11"]
	if c11.Subscribed || c11.Timezone != "UTC" || !reflect.DeepEqual(c11.Attributes, map[string]any{"n": 1.0, "tags": []any{"a", "b"}}) {
		t.Errorf("customer c11 = %+v", c11)
	}
	if c11.CreatedAt.Before(before) || c11.CreatedAt.After(after) {
		t.Errorf("customer c11 created_at = %s, want the import's time, between %s and %s", c11.CreatedAt, before, after)
	}
	if len(all) != 3 {
		t.Errorf("%d customers, want 3", len(all))
	}
}

func TestImportEventsReportsBadLines(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	res := importFile(t, st, importer.Events, "events.jsonl", importer.Options{})
	if got, want := problems(res), golden(t, "events.problems"); got != want {
		t.Errorf("problems:\n%s\nwant:\n%s", got, want)
	}
	if res.Lines != 15 || res.Bad != 9 || res.Imported != 4 || res.Unchanged != 2 {
		t.Errorf("result = %+v, want 15 lines, 9 bad, 4 imported, 2 unchanged", res)
	}
	if c := counts(t, st); c.Events != 4 {
		t.Errorf("counts = %+v, want 4 events", c)
	}
}

func TestImportStrictWritesNothing(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	for _, f := range []struct {
		imp  importFunc
		name string
	}{{importer.Customers, "customers.jsonl"}, {importer.Events, "events.jsonl"}} {
		res := importFile(t, st, f.imp, f.name, importer.Options{Strict: true, BatchSize: 1})
		if got, want := problems(res), golden(t, strings.TrimSuffix(f.name, ".jsonl")+".problems"); got != want {
			t.Errorf("%s: problems:\n%s\nwant:\n%s", f.name, got, want)
		}
		if res.Imported != 0 || res.Unchanged != 0 || res.Bad == 0 {
			t.Errorf("%s: result = %+v, want nothing imported", f.name, res)
		}
	}
	if c := counts(t, st); c != (store.Counts{}) {
		t.Errorf("counts after strict imports = %+v, want all 0", c)
	}
}

func TestReimportChangesNothing(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	// Small batches for events, to cross batches; customers in one batch:
	// the file repeats c1, and a repeat in a later batch rewrites the row
	// twice per import (to the same final value).
	opts := importer.Options{BatchSize: 2}
	importFile(t, st, importer.Events, "events.jsonl", opts)
	importFile(t, st, importer.Customers, "customers.jsonl", importer.Options{})
	before := snapshot(t, st)
	if !strings.Contains(before, "OrdersCount:1 TotalSpent:42.5") {
		t.Fatalf("c1's facts missing from snapshot:\n%s", before)
	}
	for range 2 {
		if res := importFile(t, st, importer.Customers, "customers.jsonl", importer.Options{}); res.Imported != 0 || res.Unchanged != 4 {
			t.Errorf("customers re-import = %+v, want 0 imported, 4 unchanged", res)
		}
		if res := importFile(t, st, importer.Events, "events.jsonl", opts); res.Imported != 0 || res.Unchanged != 6 {
			t.Errorf("events re-import = %+v, want 0 imported, 6 unchanged", res)
		}
	}
	if after := snapshot(t, st); after != before {
		t.Errorf("re-import changed the tables:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestLongLineIsBadLine(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	var in bytes.Buffer
	in.WriteString(`{"id":"c1","email":"a@example.com"}` + "\n")
	in.WriteString(`{"id":"c2","email":"b@example.com","first_name":"` + strings.Repeat("x", importer.MaxLineBytes) + `"}` + "\n")
	in.WriteString(`{"id":"c3","email":"c@example.com"}` + "\r\n")
	in.WriteString(`{"id":"c4","email":"d@example.com"}`) // no final newline
	var progress []int
	res, err := importer.Customers(context.Background(), st, &in, "-", importer.Options{
		BatchSize: 2,
		Progress:  func(n int) { progress = append(progress, n) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := problems(res), "-:2: line longer than 1048576 bytes\n"; got != want {
		t.Errorf("problems = %q, want %q", got, want)
	}
	if res.Lines != 4 || res.Imported != 3 {
		t.Errorf("result = %+v", res)
	}
	if !reflect.DeepEqual(progress, []int{3, 4}) {
		t.Errorf("progress calls = %v, want [3 4]", progress)
	}
}

func TestProblemsAreCapped(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	in := strings.Repeat("nope\n", importer.MaxProblems+5)
	res, err := importer.Events(context.Background(), st, strings.NewReader(in), "x.jsonl", importer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Bad != importer.MaxProblems+5 || len(res.Problems) != importer.MaxProblems {
		t.Errorf("Bad = %d, problems kept = %d", res.Bad, len(res.Problems))
	}
}

func TestImportFixture(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	testenv.ImportFixture(t, st)
	if c := counts(t, st); c.Customers == 0 || c.Events == 0 {
		t.Errorf("fixture imported nothing: %+v", c)
	}
}

// TestImportLimits checks the lines refused for what they would let
// through: times too far in the future, and keys given twice.
func TestImportLimits(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		imp          importFunc
		name         string
		lines, bad   int
		imported     int
		problemsFile string
	}{
		{importer.Events, "limits-events.jsonl", 11, 7, 4, "limits-events.problems"},
		{importer.Customers, "limits-customers.jsonl", 4, 3, 1, "limits-customers.problems"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := testenv.Store(t)
			res := importFile(t, st, tt.imp, tt.name, importer.Options{Now: func() time.Time { return now }})
			if got, want := problems(res), golden(t, tt.problemsFile); got != want {
				t.Errorf("problems:\n%s\nwant:\n%s", got, want)
			}
			if res.Lines != tt.lines || res.Bad != tt.bad || res.Imported != tt.imported {
				t.Errorf("result = %+v, want %d lines, %d bad, %d imported", res, tt.lines, tt.bad, tt.imported)
			}
		})
	}
}
