package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"nurture/internal/audience"
	"nurture/internal/campaign"
	"nurture/internal/planner"
	"nurture/internal/store"
)

// toolkitTiming is part e for one campaign: its fastest round of each kind.
type toolkitTiming struct {
	name       string
	triggered  bool
	candidates int // rows of the bare scan
	scan       time.Duration
}

// toolkitStats is what part e measured, for the report and the tests.
type toolkitStats struct {
	campaigns         []toolkitTiming
	sweepScan         time.Duration // bare scan of the simulated sweep's rows; 0 without a stage trigger
	dryRun            time.Duration // fastest DryRun
	planned, heldOut  int
	capped, evaluated int
}

// toolkit is part e: planning with the marketer's toolkit. DryRun (what
// `nurture plan` runs: the simulated stage sweep, every scheduled campaign
// as if it fired at --at, the due entries of triggered ones, the global
// cap, holdouts and variants) over the shipped campaigns, against a bare
// pgx scan of the same rows: the candidates of each scheduled campaign,
// the due entries of each triggered one, and, when a stage trigger is
// among them, the customers the simulated sweep reads. A sweep is
// recorded an hour before --at first, as the hourly scheduler would have
// done, so that the simulated sweep finds stage entries.
func (b *bench) toolkit(ctx context.Context) error {
	if err := b.st.ClearDeliveries(ctx); err != nil {
		return err
	}
	if err := b.st.ClearStages(ctx); err != nil {
		return err
	}
	defer b.st.ClearStages(context.WithoutCancel(ctx))
	p := planner.New(b.st.Store, b.log)
	rules := b.shipped.Rules
	targets := rules.Targets()
	if _, err := p.Sweep(ctx, rules, b.cfg.At.Add(-time.Hour)); err != nil {
		return err
	}
	ts := &toolkitStats{campaigns: make([]toolkitTiming, len(targets))}
	stageTrigger := false
	for _, t := range targets {
		if tr := t.Campaign.Trigger; t.Campaign.Enabled && tr != nil && tr.EnteredStage != "" {
			stageTrigger = true
		}
	}
	for round := range b.cfg.Rounds {
		b.progress("toolkit planning: round %d of %d, %d shipped campaigns over %d customers", round+1, b.cfg.Rounds, len(targets), b.cfg.Customers)
		if stageTrigger {
			start := time.Now()
			if _, err := b.st.ScanSweep(ctx); err != nil {
				return err
			}
			ts.sweepScan = fastest(ts.sweepScan, time.Since(start))
		}
		for i, t := range targets {
			tm := &ts.campaigns[i]
			start := time.Now()
			n, err := b.scanCampaign(ctx, t)
			if err != nil {
				return err
			}
			tm.name, tm.triggered, tm.candidates = t.Campaign.Name, planner.Triggered(t.Campaign), n
			tm.scan = fastest(tm.scan, time.Since(start))
		}
		var planned, heldOut, capped int
		start := time.Now()
		stats, err := p.DryRun(ctx, rules, targets, b.cfg.At, func(pl *planner.Planned) error {
			switch pl.Status {
			case store.StatusHeldOut:
				heldOut++
			case store.StatusSkipped:
				capped++
			default:
				planned++
			}
			return nil
		})
		if err != nil {
			return err
		}
		ts.dryRun = fastest(ts.dryRun, time.Since(start))
		ts.planned, ts.heldOut, ts.capped, ts.evaluated = planned, heldOut, capped, 0
		for _, st := range stats {
			ts.evaluated += st.Candidates
		}
		fmt.Fprintf(b.stderr, "    bare scans=%s dry run=%s planned=%d held_out=%d capped=%d\n",
			secs(ts.scanTotal()), secs(time.Since(start)), planned, heldOut, capped)
	}
	b.toolkitStats = ts
	b.toolkitResults(ts)
	return nil
}

// scanCampaign is the bare scan of the rows DryRun reads for t.
func (b *bench) scanCampaign(ctx context.Context, t *audience.Target) (int, error) {
	c := t.Campaign
	if !c.Enabled {
		return 0, nil
	}
	if c.Trigger != nil {
		return b.st.ScanDueEntries(ctx, planner.DueFilter(c, b.cfg.At, nil))
	}
	return b.st.ScanCandidates(ctx, store.CandidateFilter{Campaign: c.Name, At: b.cfg.At,
		MinInactive: c.Audience.MinInactive, MaxInactive: c.Audience.MaxInactive, Journey: c.IsJourney()})
}

func (ts *toolkitStats) scanTotal() time.Duration {
	d := ts.sweepScan
	for _, c := range ts.campaigns {
		d += c.scan
	}
	return d
}

func (ts *toolkitStats) scanRows() int {
	n := 0
	for _, c := range ts.campaigns {
		n += c.candidates
	}
	return n
}

func fastest(best, d time.Duration) time.Duration {
	if best == 0 || d < best {
		return d
	}
	return best
}

// toolkitResults adds part e's row and its per-campaign table.
func (b *bench) toolkitResults(ts *toolkitStats) {
	scan := ts.scanTotal()
	ratio := ts.dryRun.Seconds() / scan.Seconds()
	var table strings.Builder
	table.WriteString("| Campaign | Starts on | Rows | Bare scan |\n|---|---|--:|--:|\n")
	if ts.sweepScan > 0 {
		fmt.Fprintf(&table, "| (simulated stage sweep) | every customer | %s | %s |\n", count(float64(b.cfg.Customers)), secs(ts.sweepScan))
	}
	for _, c := range ts.campaigns {
		kind := "schedule"
		if c.triggered {
			kind = "trigger (due entries)"
		}
		fmt.Fprintf(&table, "| %s | %s | %s | %s |\n", c.name, kind, count(float64(c.candidates)), secs(c.scan))
	}
	b.add(result{
		name: fmt.Sprintf("(e) Planning with the toolkit: `DryRun` of the %d shipped campaigns over %s customers (journeys, triggers, send windows, holdout and variants, global cap)",
			len(ts.campaigns), count(float64(b.cfg.Customers))),
		value: fmt.Sprintf("%s: %s rows evaluated; %s planned, %s held out, %s capped", secs(ts.dryRun),
			count(float64(ts.evaluated)), count(float64(ts.planned)), count(float64(ts.heldOut)), count(float64(ts.capped))),
		baseline: fmt.Sprintf("bare pgx scan of the same rows (sweep, candidates, due entries): %s (%s rows)", secs(scan),
			count(float64(ts.scanRows()+b.sweepRows(ts)))),
		ratio:  ratio,
		target: "≤ 1.5×",
		met:    met(ratio <= 1.5),
	})
	b.detail("#### (e) Bare scans of the toolkit's planning (fastest of %d rounds)\n\n%s", b.cfg.Rounds, table.String())
}

func (b *bench) sweepRows(ts *toolkitStats) int {
	if ts.sweepScan > 0 {
		return b.cfg.Customers
	}
	return 0
}

// triggerYAML is the campaign of parts g and h: every event of type
// triggerEvent starts it at once.
const (
	triggerCampaign = "bench-trigger"
	triggerEvent    = "bench_ping"
)

func triggerYAML(template string) string {
	return fmt.Sprintf(`name: %s
description: Every %s event, at once
enabled: true
trigger:
  event: %s
  within: 1h
email:
  template: %s
`, triggerCampaign, triggerEvent, triggerEvent, template)
}

// loadTriggerSet writes and loads the campaign set of part h: the
// lifecycle and the one campaign, without settings (no cap, no window),
// so that every event yields one delivery.
func (b *bench) loadTriggerSet() error {
	dir := filepath.Join(b.dir, "trigger")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(b.cfg.CampaignsDir, campaign.LifecycleFile), filepath.Join(dir, campaign.LifecycleFile)); err != nil {
		return err
	}
	tmpl := b.plan.Rules.Targets()[0].Campaign.Email.Template
	if err := os.WriteFile(filepath.Join(dir, triggerCampaign+".yaml"), []byte(triggerYAML(tmpl)), 0o644); err != nil {
		return err
	}
	var err error
	b.trigger, err = b.loadSet(dir)
	return err
}
