package scheduler

import (
	"context"
	"io"
	"time"

	"nurture/internal/planner"
	"nurture/internal/store"
)

// triggerLoop plans the due entries of triggered campaigns, then the due
// steps of journeys under way, every TriggerPoll while this scheduler
// leads, until ctx ends. A poll that takes longer than the period delays
// the next one; polls never overlap.
func (s *Scheduler) triggerLoop(ctx context.Context) {
	tk := time.NewTicker(s.cfg.TriggerPoll)
	defer tk.Stop()
	for {
		s.PollTriggers(ctx)
		s.PollSteps(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

// resultsLoop attributes new purchases and refreshes the results rollups
// every TriggerPoll while this scheduler leads, until ctx ends. It runs
// beside the trigger loop, so that a long import (attribution waits for
// none) or a large first refresh never delays a triggered email.
func (s *Scheduler) resultsLoop(ctx context.Context) {
	tk := time.NewTicker(s.cfg.TriggerPoll)
	defer tk.Stop()
	for {
		s.Attribute(ctx)
		s.RefreshRollups(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

// PollTriggers plans, once, the entries of every enabled triggered
// campaign that are due at the clock's now, in descending priority then
// name, as the trigger loop does every TriggerPoll. Errors are logged;
// rows written but not enqueued are left to the reconciler. It returns
// how many entries it made: delivery rows of single emails, journeys
// entered.
func (s *Scheduler) PollTriggers(ctx context.Context) int {
	rules := s.rules.Load()
	now := s.now().UTC()
	total := 0
	for _, t := range planner.ByPriority(rules.Targets()) {
		if ctx.Err() != nil {
			return total
		}
		c := t.Campaign
		if !c.Enabled || !planner.Triggered(c) {
			continue
		}
		start := time.Now()
		opts := s.cfg.Tick
		opts.Enqueued = func(due time.Time) { s.metrics.TriggerLag(s.now().Sub(due)) }
		res, err := s.planner.TickTriggered(ctx, rules, t, now, s.queue, opts)
		entries := res.Planned // one delivery row per entry of a single email
		if c.IsJourney() {
			entries = res.Entered
		}
		s.metrics.TriggerEntries(c.Name, entries)
		total += entries
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("planning due triggers failed; unenqueued deliveries are left to the reconciler",
					"campaign", c.Name, "at", now.Format(time.RFC3339), "err", err)
			}
			continue
		}
		if entries > 0 || res.ExprErrors > 0 {
			s.log.Info("due triggers planned", "campaign", c.Name, "at", now.Format(time.RFC3339),
				"due", res.Candidates, "matched", res.Matched, "entries", entries, "planned", res.Planned, "enqueued", res.Enqueued,
				"took", time.Since(start).Round(time.Millisecond))
		}
	}
	return total
}

// PollSteps plans, once, the due steps of every journey under way at the
// clock's now (planner.StepAll), logging the journeys that moved.
func (s *Scheduler) PollSteps(ctx context.Context) {
	rules := s.rules.Load()
	now := s.now().UTC()
	results, err := s.planner.StepAll(ctx, rules, rules.Targets(), now, s.queue, io.Discard)
	for _, r := range results {
		if r.Moved > 0 || r.ExprErrors > 0 {
			s.log.Info("journey steps planned", "campaign", r.Campaign, "at", now.Format(time.RFC3339),
				"moved", r.Moved, "planned", r.Planned, "enqueued", r.Enqueued, "expr_errors", r.ExprErrors)
		}
	}
	if err != nil && ctx.Err() == nil {
		s.log.Error("planning due journey steps failed; unenqueued deliveries are left to the reconciler",
			"at", now.Format(time.RFC3339), "err", err)
	}
}

// Attribute attributes the purchases imported since the last poll to the
// deliveries that earned them (store.Attribute), with the conversion
// windows of the campaigns running now.
func (s *Scheduler) Attribute(ctx context.Context) {
	by, def := s.rules.Load().Set().ConversionWindows()
	res, err := s.store.Attribute(ctx, store.Windows{By: by, Default: def})
	if err != nil {
		if ctx.Err() == nil {
			s.metrics.InfraError("postgres", "attribute")
			s.log.Error("attributing purchases failed; the next poll catches up", "err", err)
		}
		return
	}
	for campaign, c := range res.ByCampaign {
		s.metrics.Converted(campaign, c.Conversions, c.Revenue)
	}
	if res.Conversions > 0 {
		s.log.Info("purchases attributed", "events", res.Events, "conversions", res.Conversions)
	}
}

// RefreshRollups brings the results pages' daily campaign counts up to
// date with the deliveries, purchases and opt-outs written since the last
// refresh (store.RefreshRollups).
func (s *Scheduler) RefreshRollups(ctx context.Context) {
	start := time.Now()
	res, err := s.store.RefreshRollups(ctx, s.now())
	if err != nil {
		if ctx.Err() == nil {
			s.metrics.InfraError("postgres", "refresh_rollups")
			s.log.Error("refreshing the results rollups failed; the next poll catches up", "err", err)
		}
		return
	}
	if res.Full {
		s.log.Info("results rollups built", "days", res.Days, "rows", res.Rows, "took", time.Since(start).Round(time.Millisecond))
	}
}

// sweepLoop records every customer's stage when the leader takes over,
// then every SweepEvery, until ctx ends. It runs beside the trigger loop:
// the entries a sweep records are planned by the next poll.
func (s *Scheduler) sweepLoop(ctx context.Context) {
	for {
		s.Sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.cfg.SweepEvery):
		}
	}
}

// Sweep runs the stage sweep at the clock's now, logging and counting
// what it recorded.
func (s *Scheduler) Sweep(ctx context.Context) {
	start := time.Now()
	now := s.now().UTC()
	res, err := s.planner.Sweep(ctx, s.rules.Load(), now)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("stage sweep failed; the next one catches up", "at", now.Format(time.RFC3339), "err", err)
		}
		return
	}
	if res.Refused {
		return // the planner logged it
	}
	s.metrics.Swept(res.Baselines, res.Entries, time.Since(start))
	s.log.Info("stage sweep done", "at", now.Format(time.RFC3339), "customers", res.Customers,
		"baselines", res.Baselines, "entries", res.Entries, "failed", res.Failed,
		"took", time.Since(start).Round(time.Millisecond))
}
