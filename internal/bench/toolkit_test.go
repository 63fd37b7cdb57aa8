package bench

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nurture/internal/store"
	"nurture/internal/testenv"
)

// TestToolkitParts runs parts e to h on a small audience and checks what
// each one counted. Timings are reported, never checked: only that they
// were measured.
func TestToolkitParts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the nurture binary and imports an audience")
	}
	// Part f runs the nurture binary as its child process.
	exe := filepath.Join(t.TempDir(), "nurture")
	if out, err := exec.Command("go", "build", "-o", exe, "nurture/cmd/nurture").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Setenv("TMPDIR", t.TempDir()) // the machine lock, apart from a real benchmark's
	dbURL, _ := testenv.ScratchDatabaseURL(t, "bench")
	ro := testenv.Redis(t)
	cfg := DefaultConfig()
	cfg.Only = "e,f,g,h"
	cfg.Customers = 2000
	cfg.Rounds = 1
	cfg.Events = 3000
	cfg.EventFile = 1000
	cfg.TriggerRate = 200
	cfg.TriggerTime = time.Second
	cfg.TriggerPoll = 200 * time.Millisecond
	cfg.DatabaseURL = dbURL
	cfg.RedisURL = fmt.Sprintf("redis://%s/%d", ro.Addr, ro.DB)
	cfg.CampaignsDir, cfg.TemplatesDir = "../../campaigns", "../../templates"
	cfg.Executable = exe
	cfg.LogLevel = "warn"
	cfg.Now = func() time.Time { return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC) }
	var stdout, stderr bytes.Buffer
	ctx := context.Background()
	b, err := run(ctx, cfg, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}

	// e: every shipped campaign was scanned and planned.
	ts := b.toolkitStats
	if len(ts.campaigns) != len(b.shipped.Rules.Targets()) {
		t.Errorf("part e scanned %d campaigns, want %d", len(ts.campaigns), len(b.shipped.Rules.Targets()))
	}
	if ts.dryRun <= 0 || ts.scanTotal() <= 0 || ts.planned == 0 || ts.heldOut == 0 {
		t.Errorf("part e: dry run %s, scans %s, planned %d, held out %d; want all measured and some planned and held out",
			ts.dryRun, ts.scanTotal(), ts.planned, ts.heldOut)
	}

	// f: the first sweep records every customer as a baseline, the second
	// nothing, the third only changes among the 1 % whose orders moved.
	ss := b.sweepStats
	if len(ss.runs) != 3 || ss.touched != 20 {
		t.Fatalf("part f: %d sweeps, %d customers touched; want 3 and 20", len(ss.runs), ss.touched)
	}
	first, same, changed := ss.runs[0].Sweep, ss.runs[1].Sweep, ss.runs[2].Sweep
	if *first != (sweepCounts{Customers: 2000, Baselines: 2000}) {
		t.Errorf("first sweep = %+v, want 2000 customers, all baselines", *first)
	}
	if *same != (sweepCounts{Customers: 2000}) {
		t.Errorf("unchanged sweep = %+v, want 2000 customers and no change", *same)
	}
	if changed.Customers != 2000 || changed.Changes == 0 || changed.Changes > 20 || changed.Entries != changed.Changes || changed.Baselines != 0 {
		t.Errorf("1%% sweep = %+v, want 1 to 20 changes, each an entry", *changed)
	}
	for _, r := range ss.runs {
		if r.PeakRSS <= 0 || r.TickSeconds <= 0 {
			t.Errorf("sweep %q: peak RSS %d, %v s; want both measured", r.label, r.PeakRSS, r.TickSeconds)
		}
	}

	// g: every event imported and copied, and the poll ran meanwhile. The
	// polls during and after the import planned one cart reminder for each
	// event worth one: the 3,000 events have customers of their own, and
	// 2,660 of them a cart_value (10 + i mod 90) of at least 20.
	gs := b.ingestStats
	if gs.imported != 3000 || gs.copied != 3000 || gs.files != 3 || gs.polls < 1 {
		t.Errorf("part g: imported %d, copied %d, %d files, %d polls; want 3000, 3000, 3, at least 1", gs.imported, gs.copied, gs.files, gs.polls)
	}
	if gs.entries+gs.caughtUp != 2660 || gs.catchUpTime <= 0 || gs.idle != 0 || gs.idleTime <= 0 {
		t.Errorf("part g: %d entries planned during the import, %d after (in %s) and %d by the next poll (in %s); want 2660, then none, both polls timed",
			gs.entries, gs.caughtUp, gs.catchUpTime, gs.idle, gs.idleTime)
	}

	// h: every event imported was enqueued once, with a lag that is not
	// negative.
	ls := b.lagStats
	if ls.events != 200 || ls.imported != 200 || len(ls.lags) != 200 {
		t.Errorf("part h: %d events made, %d imported, %d enqueued; want 200 each", ls.events, ls.imported, len(ls.lags))
	}
	if len(ls.lags) > 0 && ls.lags[0] < 0 {
		t.Errorf("part h: smallest lag %s, want ≥ 0", ls.lags[0])
	}

	// The database holds the sample audience again: nothing of parts g and h
	// is left, and the orders of part f are restored.
	st, err := store.OpenScratch(ctx, dbURL, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	have, err := st.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, err := countSample(cfg.Customers, cfg.Seed, cfg.At)
	if err != nil {
		t.Fatal(err)
	}
	if have.Customers != want.customers || have.Events != want.events {
		t.Errorf("after the run: %d customers and %d events, want %d and %d", have.Customers, have.Events, want.customers, want.events)
	}
	for _, part := range []string{"(e)", "(f)", "(g)", "(h)"} {
		if !strings.Contains(stdout.String(), "| "+part) {
			t.Errorf("report has no row of part %s:\n%s", part, stdout.String())
		}
	}
}
