package bench

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"nurture/internal/testenv"
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
		rss   int64
		ok    bool
		why   string
	}{
		{"met", 8500, 100, exact, 50e6, true, ""},
		{"faster than smtp-source", 12000, 100, exact, 50e6, true, ""},
		{"slow", 8499, 100, exact, 50e6, false, "0.84× the smtp-source rate"},
		{"slower", 5000, 100, exact, 50e6, false, "0.50× the smtp-source rate"},
		{"unrecorded", 9000, 99, exact, 50e6, false, "99 of 100 rows sent"},
		{"duplicates", 9000, 100, sinkTally{deliveries: 100, duplicates: 2}, 50e6, false, "at the sink: 2 duplicates, 0 missing"},
		{"missing", 9000, 100, sinkTally{deliveries: 100, missing: 1}, 50e6, false, "at the sink: 0 duplicates, 1 missing"},
		{"memory", 9000, 100, exact, 100e6, false, "worker peak RSS 100 MB"},
		{"everything", 10, 98, sinkTally{deliveries: 100, duplicates: 1, missing: 2, unexpected: 3}, 250e6, false,
			"0.00× the smtp-source rate; 98 of 100 rows sent; at the sink: 1 duplicates, 2 missing, 3 unexpected; worker peak RSS 250 MB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := endToEndMet(tc.rate, 10000, tc.sent, 100, tc.tally, tc.rss)
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

// TestSendPart runs part c small, end to end, against Postfix's smtp-sink
// and smtp-source, and checks what it counted: every delivery sent and
// recorded, one message each at the sink. Timings are reported, never
// checked.
func TestSendPart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the nurture binary and imports an audience")
	}
	for _, tool := range []string{"smtp-sink", "smtp-source"} {
		if _, err := postfixTool(tool); err != nil {
			t.Skipf("part c needs Postfix's test tools: %v", err)
		}
	}
	exe := filepath.Join(t.TempDir(), "nurture")
	if out, err := exec.Command("go", "build", "-o", exe, "nurture/cmd/nurture").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The machine lock, apart from a real benchmark's. smtp-sink, run as
	// an unprivileged user when the test runs as root, must reach its dump
	// under it.
	tmp := t.TempDir()
	for _, dir := range []string{tmp, filepath.Dir(tmp)} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("TMPDIR", tmp)
	dbURL, _ := testenv.ScratchDatabaseURL(t, "bench")
	ro := testenv.Redis(t)
	cfg := DefaultConfig()
	cfg.Only = "c"
	cfg.Customers = 400
	cfg.Sends = 300
	cfg.Workers = 16
	cfg.SMTPConns = 4
	cfg.DatabaseURL = dbURL
	cfg.RedisURL = fmt.Sprintf("redis://%s/%d", ro.Addr, ro.DB)
	cfg.CampaignsDir, cfg.TemplatesDir = "../../campaigns", "../../templates"
	cfg.Executable = exe
	cfg.LogLevel = "warn"
	cfg.Profile = t.TempDir()
	cfg.Now = func() time.Time { return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC) }
	var stdout, stderr bytes.Buffer
	b, err := run(context.Background(), cfg, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}

	src, w := b.sendStats.source, b.sendStats.worker
	if a := b.sendStats.sourceAfter; a.scan.messages != 300 || len(a.scan.ids) != 1 || a.elapsed <= 0 {
		t.Errorf("smtp-source after nurture: %d messages, %d Message-IDs in %s; want 300 with 1", a.scan.messages, len(a.scan.ids), a.elapsed)
	}
	if src.scan.messages != 300 || len(src.scan.ids) != 1 {
		t.Errorf("smtp-source: the sink received %d messages with %d Message-IDs, want 300 with 1", src.scan.messages, len(src.scan.ids))
	}
	if w.sent != 300 {
		t.Errorf("worker: %d rows sent, want 300", w.sent)
	}
	if want := (sinkTally{deliveries: 300}); w.tally != want || w.scan.messages != 300 {
		t.Errorf("worker: tally %+v of %d messages at the sink, want %+v of 300", w.tally, w.scan.messages, want)
	}
	if w.peakRSS <= 0 || w.cpu.by[cpuSender] <= 0 {
		t.Errorf("worker: peak RSS %d, CPU %v; want both measured", w.peakRSS, w.cpu.by[cpuSender])
	}
	// The worker's message and smtp-source's differ only in a few headers.
	if d := w.scan.meanSize() - src.scan.meanSize(); d < -200 || d > 200 {
		t.Errorf("mean message size: worker %.0f bytes, smtp-source %.0f", w.scan.meanSize(), src.scan.meanSize())
	}
	for _, want := range []string{"| (c) Physical limit: Postfix `smtp-source` → `smtp-sink`, 300 copies", "| (c) End to end: 300 deliveries planned",
		"300 of 300 rows sent; at the sink one per delivery", "| (c) DKIM: 300 raw", "#### (c) CPU per 1,000 deliveries", "| nurture worker process → `smtp-sink` |",
		"| `smtp-source` → `smtp-sink`, before |", "| `smtp-source` → `smtp-sink`, after |", "and one after it",
		"**What the target leaves.** At 0.85× the baseline's"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, stdout.String())
		}
	}
	if fi, err := os.Stat(filepath.Join(cfg.Profile, "part-c-worker.pprof")); err != nil || fi.Size() == 0 {
		t.Errorf("the worker's CPU profile: %v", err)
	}
	// Every sink's dump is gone.
	if left, _ := filepath.Glob(filepath.Join(tmp, "nurture-bench-sink-*")); len(left) > 0 {
		t.Errorf("sink directories left: %v", left)
	}
}

// Part c's worker inherits Go's runtime settings and nothing else of the
// bench's environment.
func TestRuntimeEnv(t *testing.T) {
	got := runtimeEnv([]string{"PATH=/bin", "GOMAXPROCS=1", "GOGCX=2", "DATABASE_URL=postgres://x", "GODEBUG=madvdontneed=1", "GOGC"})
	want := []string{"GOMAXPROCS=1", "GODEBUG=madvdontneed=1", "GOGC"}
	if !slices.Equal(got, want) {
		t.Errorf("runtimeEnv = %q, want %q", got, want)
	}
}

// What part c's target leaves of the machine, and what a run spent of it.
func TestCPUBudget(t *testing.T) {
	// 2 cores at 0.85× of 12,000 messages/s: 2,000 ms of CPU a second for
	// 10,200 deliveries.
	if got := cpuBudget(2, 12000); math.Abs(got-196.078) > 0.001 {
		t.Errorf("cpuBudget(2, 12000) = %.3f, want 196.078", got)
	}
	if got := cpuCeiling(2, 250); got != 8000 {
		t.Errorf("cpuCeiling(2, 250) = %v, want 8000", got)
	}
	// 10,000 deliveries: worker 1.2 s, PostgreSQL 0.9 s, Redis 0.02 s, the
	// sink 0.7 s, the bench process (not counted) 0.3 s; the machine 90 %
	// busy.
	u := cpuUsage{
		by: map[string]time.Duration{cpuSender: 1200 * time.Millisecond, cpuPostgres: 900 * time.Millisecond,
			cpuRedis: 20 * time.Millisecond, cpuSink: 700 * time.Millisecond, cpuBench: 300 * time.Millisecond},
		machine: machineCPU{busy: 9 * time.Second, idle: time.Second},
	}
	got := strings.Join(strings.Fields(budgetText(2, 12000, 6000, u, 10000)), " ")
	for _, want := range []string{
		"At 0.85× the baseline's 12,000 messages/s, the machine's 2 cores, every one busy, allow 196.1 ms of CPU per 1,000 deliveries",
		"nurture's run spent 282.0 in the worker, PostgreSQL, Redis and the sink (70.0 of it the sink's)",
		"sends at most 7,092 deliveries/s, 0.59× the baseline; the run reached 0.50× with the machine 90 % busy",
		"the target leaves 126.1 ms per 1,000 for the worker, PostgreSQL and Redis; they spent 212.0",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("budget text lacks %q:\n%s", want, got)
		}
	}
	// A sink that takes the whole budget by itself, and runs with nothing
	// to divide by.
	u.by[cpuSink] = 2500 * time.Millisecond
	if got := strings.Join(strings.Fields(budgetText(2, 12000, 6000, u, 10000)), " "); !strings.Contains(got,
		"The sink alone spent more than the whole budget; the worker, PostgreSQL and Redis spent 212.0.") {
		t.Errorf("budget text with a greedy sink:\n%s", got)
	}
	for _, tc := range []struct {
		base float64
		u    cpuUsage
	}{{0, u}, {12000, cpuUsage{by: map[string]time.Duration{}}}} {
		if got := budgetText(2, tc.base, 6000, tc.u, 10000); got != "**What the target leaves:** not computed: no baseline rate or no CPU measured.\n" {
			t.Errorf("budget text with baseline %v and CPU %v: %q", tc.base, tc.u.by, got)
		}
	}
}
