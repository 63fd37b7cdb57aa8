package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestTallyMessages(t *testing.T) {
	want := []string{"<d1@localhost>", "<d2@localhost>", "<d3@localhost>", "<d4@localhost>"}
	// Raw sends of the baseline were in the sink already; d4's earlier copy too.
	before := map[string]int{"<raw-1@localhost>": 1, "<raw-2@localhost>": 1, "<d4@localhost>": 1}
	for _, tc := range []struct {
		name  string
		after map[string]int
		want  sinkTally
		text  string
	}{
		{"one each",
			map[string]int{"<raw-1@localhost>": 1, "<raw-2@localhost>": 1, "<d1@localhost>": 1, "<d2@localhost>": 1, "<d3@localhost>": 1, "<d4@localhost>": 2},
			sinkTally{deliveries: 4}, "one per delivery"},
		{"duplicates and missing",
			map[string]int{"<raw-1@localhost>": 1, "<raw-2@localhost>": 1, "<d1@localhost>": 3, "<d2@localhost>": 2, "<d4@localhost>": 1},
			sinkTally{deliveries: 4, duplicates: 3, missing: 2}, "3 duplicates, 2 missing"},
		{"unexpected",
			map[string]int{"<raw-1@localhost>": 2, "<raw-2@localhost>": 1, "<d1@localhost>": 1, "<d2@localhost>": 1, "<d3@localhost>": 1, "<d4@localhost>": 2, "": 1},
			sinkTally{deliveries: 4, unexpected: 2}, "0 duplicates, 0 missing, 2 unexpected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tallyMessages(want, before, tc.after)
			if got != tc.want {
				t.Errorf("tallyMessages = %+v, want %+v", got, tc.want)
			}
			if got.String() != tc.text {
				t.Errorf("String = %q, want %q", got.String(), tc.text)
			}
		})
	}
}

func TestEndToEndMet(t *testing.T) {
	exact := sinkTally{deliveries: 100}
	for _, tc := range []struct {
		name  string
		rate  float64
		sent  int
		tally sinkTally
		ok    bool
		why   string
	}{
		{"met", 3000, 100, exact, true, ""},
		{"slow", 2999.6, 100, exact, false, "under 3,000 sends/s (3,000)"},
		{"slower", 2500, 100, exact, false, "under 3,000 sends/s (2,500)"},
		{"unrecorded", 4000, 99, exact, false, "99 of 100 rows sent"},
		{"duplicates", 4000, 100, sinkTally{deliveries: 100, duplicates: 2}, false, "at the sink: 2 duplicates, 0 missing"},
		{"missing", 4000, 100, sinkTally{deliveries: 100, missing: 1}, false, "at the sink: 0 duplicates, 1 missing"},
		{"everything", 10, 98, sinkTally{deliveries: 100, duplicates: 1, missing: 2, unexpected: 3}, false,
			"under 3,000 sends/s (10); 98 of 100 rows sent; at the sink: 1 duplicates, 2 missing, 3 unexpected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := endToEndMet(tc.rate, tc.sent, 100, tc.tally)
			if ok != tc.ok || why != tc.why {
				t.Errorf("endToEndMet = %v, %q; want %v, %q", ok, why, tc.ok, tc.why)
			}
		})
	}
}

// testdata/smtp-sink.dump is what smtp-sink -D dumped of four messages:
// d1 twice, d2 with its header name in lower case, and one without a
// Message-ID whose body has a line that looks like one.
func TestScanDump(t *testing.T) {
	f, err := os.Open("testdata/smtp-sink.dump")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := scanDump(f)
	if err != nil {
		t.Fatal(err)
	}
	want := dumpScan{messages: 4, ids: map[string]int{"<d1@localhost>": 2, "<d2@localhost>": 1, "": 1}, bytes: 451}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("scanDump = %+v, want %+v", got, want)
	}
	c := dumpCounter{file: "testdata/smtp-sink.dump"}
	if n, err := c.count(); err != nil || n != 4 {
		t.Errorf("dumpCounter.count = %d, %v; want 4", n, err)
	}
	if n, err := c.count(); err != nil || n != 4 {
		t.Errorf("dumpCounter.count again = %d, %v; want 4", n, err)
	}
}

// TestDumpCounterGrowing counts markers in a dump that grows a few bytes
// at a time, markers split across the reads included.
func TestDumpCounterGrowing(t *testing.T) {
	data, err := os.ReadFile("testdata/smtp-sink.dump")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dump")
	c := dumpCounter{file: file}
	if n, err := c.count(); err != nil || n != 0 {
		t.Fatalf("count before the dump exists = %d, %v; want 0", n, err)
	}
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := 0; i < len(data); i += 7 {
		if _, err := f.Write(data[i:min(i+7, len(data))]); err != nil {
			t.Fatal(err)
		}
		want := bytes.Count(append([]byte("\n"), data[:min(i+7, len(data))]...), []byte("\n"+sinkMarker))
		if n, err := c.count(); err != nil || n != want {
			t.Fatalf("after %d bytes: count = %d, %v; want %d", min(i+7, len(data)), n, err, want)
		}
	}
}
