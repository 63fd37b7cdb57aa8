package planner

import (
	"context"
	"time"

	"nurture/internal/audience"
	"nurture/internal/store"
)

// Sweep records every customer's stage at the instant at and the changes
// since the previous sweep (see store.SweepStages): a changed stage is an
// entry observed at at, which stage triggers plan. A sweep at an instant
// before the latest one records nothing (the result says Refused): stage
// history never moves backwards, so a run-once --at in the past cannot
// rewrite it. Customers whose stage expression fails keep their stored
// stage; the first few are logged.
func (p *Planner) Sweep(ctx context.Context, rules *audience.Rules, at time.Time) (store.SweepResult, error) {
	res, err := p.store.SweepStages(ctx, at, p.stageOf(rules, at), store.SweepOptions{})
	p.logSweep(res, err, false)
	return res, err
}

// simulateSweep is Sweep writing nothing, for dry runs: it returns the
// entries into watched stages that Sweep would record, for every customer
// or, when customer is not "", for that one alone.
func (p *Planner) simulateSweep(ctx context.Context, rules *audience.Rules, at time.Time, watched map[string]bool, customer string) ([]store.StageEntry, error) {
	var entries []store.StageEntry
	res, err := p.store.SweepStages(ctx, at, p.stageOf(rules, at), store.SweepOptions{
		DryRun:   true,
		Customer: customer,
		Entry: func(e store.StageEntry) {
			if watched[e.Stage] {
				entries = append(entries, e)
			}
		},
	})
	p.logSweep(res, err, true)
	return entries, err
}

func (p *Planner) stageOf(rules *audience.Rules, at time.Time) func(*audience.Customer) (string, error) {
	at = at.UTC()
	failed := 0
	return func(c *audience.Customer) (string, error) {
		facts := audience.FactsAt(c, at)
		stage, err := rules.Stage(&facts)
		if err != nil {
			failed++
			if failed <= 5 {
				p.log.Warn("stage expression failed; the customer keeps the stage recorded before", "customer_id", c.ID, "err", err)
			}
		}
		return stage, err
	}
}

func (p *Planner) logSweep(res store.SweepResult, err error, dry bool) {
	switch {
	case err != nil:
		return // the caller reports it
	case res.Refused:
		p.log.Warn("stage sweep not recorded: stage history never moves backwards",
			"at", res.At.Format(time.RFC3339), "latest_sweep", res.Latest.Format(time.RFC3339), "dry_run", dry)
	case res.Failed > 0:
		p.log.Warn("stage sweep left customers whose stage expression failed at their recorded stage",
			"at", res.At.Format(time.RFC3339), "count", res.Failed, "dry_run", dry)
	}
}

// watchedStages returns the stages that enabled stage triggers among
// targets watch, or nil when none does.
func watchedStages(targets []*audience.Target) map[string]bool {
	var w map[string]bool
	for _, t := range targets {
		if c := t.Campaign; c.Enabled && c.Trigger != nil && c.Trigger.EnteredStage != "" {
			if w == nil {
				w = map[string]bool{}
			}
			w[c.Trigger.EnteredStage] = true
		}
	}
	return w
}
