package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"nurture/internal/audience"
	"nurture/internal/planner"
	"nurture/internal/store"
)

// campaignTiming is part a for one campaign: its fastest round of each kind.
type campaignTiming struct {
	name       string
	candidates int
	matched    int
	exprErrors int
	scan, eval time.Duration
}

// planning is part a: the dry-run planning of every enabled scheduled campaign (SQL
// pre-filter, stage, Match) against a bare pgx scan of the same candidate
// rows, each campaign's scan and evaluation run back to back so that both
// see the same cache.
func (b *bench) planning(ctx context.Context) error {
	if err := b.st.ClearDeliveries(ctx); err != nil {
		return err
	}
	p := planner.New(b.st.Store, b.log)
	// Enabled scheduled campaigns only: a disabled one plans nothing, and
	// a triggered one has no candidates of its own to scan (part e plans
	// those from their due events and stage entries).
	var targets []*audience.Target
	for _, t := range b.plan.Rules.Targets() {
		if t.Campaign.Enabled && !planner.Triggered(t.Campaign) {
			targets = append(targets, t)
		}
	}
	timings := make([]campaignTiming, len(targets))
	for round := range b.cfg.Rounds {
		b.progress("planning: round %d of %d, %d campaigns over %d customers", round+1, b.cfg.Rounds, len(targets), b.cfg.Customers)
		for i, t := range targets {
			if err := b.planCampaign(ctx, p, t, &timings[i]); err != nil {
				return err
			}
			tm := &timings[i]
			fmt.Fprintf(b.stderr, "    %-20s candidates=%-8d matched=%-8d scan=%-8s evaluate=%s\n",
				tm.name, tm.candidates, tm.matched, secs(tm.scan), secs(tm.eval))
		}
	}
	b.planningResults(timings)
	return nil
}

// planCampaign times one bare scan and one evaluation of t, keeping the
// fastest of each in tm.
func (b *bench) planCampaign(ctx context.Context, p *planner.Planner, t *audience.Target, tm *campaignTiming) error {
	c := t.Campaign
	// The filter Evaluate builds; the candidate counts are compared below.
	f := store.CandidateFilter{Campaign: c.Name, At: b.cfg.At, MinInactive: c.Audience.MinInactive, MaxInactive: c.Audience.MaxInactive}
	start := time.Now()
	rows, err := b.st.ScanCandidates(ctx, f)
	if err != nil {
		return err
	}
	scan := time.Since(start)

	start = time.Now()
	stats, err := p.Evaluate(ctx, b.plan.Rules, t, b.cfg.At, func(*planner.Planned) error { return nil })
	if err != nil {
		return err
	}
	eval := time.Since(start)
	if stats.Candidates != rows {
		return fmt.Errorf("campaign %q: Evaluate saw %d candidates, the bare scan %d rows", c.Name, stats.Candidates, rows)
	}
	tm.name, tm.candidates, tm.matched, tm.exprErrors = c.Name, rows, stats.Matched, stats.ExprErrors
	if tm.scan == 0 || scan < tm.scan {
		tm.scan = scan
	}
	if tm.eval == 0 || eval < tm.eval {
		tm.eval = eval
	}
	return nil
}

// planningResults adds part a's row and its per-campaign table.
func (b *bench) planningResults(timings []campaignTiming) {
	var total campaignTiming
	var table strings.Builder
	table.WriteString("| Campaign | Candidates | Matched | Bare scan | Evaluate | Cost vs scan |\n|---|--:|--:|--:|--:|--:|\n")
	for _, tm := range timings {
		total.candidates += tm.candidates
		total.matched += tm.matched
		total.exprErrors += tm.exprErrors
		total.scan += tm.scan
		total.eval += tm.eval
		fmt.Fprintf(&table, "| %s | %s | %s | %s | %s | %.2f× |\n", tm.name, count(float64(tm.candidates)), count(float64(tm.matched)),
			secs(tm.scan), secs(tm.eval), tm.eval.Seconds()/tm.scan.Seconds())
	}
	ratio := total.eval.Seconds() / total.scan.Seconds()
	value := fmt.Sprintf("%s: %s candidate rows (%s/s), %s matched", secs(total.eval),
		count(float64(total.candidates)), count(rate(total.candidates, total.eval)), count(float64(total.matched)))
	if total.exprErrors > 0 {
		value += fmt.Sprintf(", %d expression errors", total.exprErrors)
	}
	b.add(result{
		name:     fmt.Sprintf("(a) Planning: `Evaluate` of %d campaigns over %s customers (dry run)", len(timings), count(float64(b.cfg.Customers))),
		value:    value,
		baseline: fmt.Sprintf("bare pgx scan of the same rows: %s (%s rows/s)", secs(total.scan), count(rate(total.candidates, total.scan))),
		ratio:    ratio,
		target:   "≤ 2×",
		met:      met(ratio <= 2),
	})
	b.detail("#### (a) Planning by campaign (fastest of %d rounds)\n\n%s", b.cfg.Rounds, table.String())
}
