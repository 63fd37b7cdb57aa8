package planner

import (
	"cmp"
	"context"
	"slices"
	"time"

	"nurture/internal/audience"
	"nurture/internal/freqcap"
	"nurture/internal/store"
)

// ByPriority returns targets in the order deliveries evaluated at one
// instant are planned: descending priority, then campaign name. Under the
// global frequency cap, earlier campaigns take a customer's last free slots.
func ByPriority(targets []*audience.Target) []*audience.Target {
	out := slices.Clone(targets)
	slices.SortStableFunc(out, func(a, b *audience.Target) int {
		return cmp.Or(cmp.Compare(b.Campaign.Priority, a.Campaign.Priority), cmp.Compare(a.Campaign.Name, b.Campaign.Name))
	})
	return out
}

// DryRun evaluates targets at the instant at as RunOnce would, writing
// nothing, and calls fn with every delivery it would record, the
// frequency cap applied as the store would apply it: scheduled campaigns
// as if they fired at at, and the due entries of triggered ones. When a
// stage trigger is among targets, the stage sweep at at is simulated in
// memory and the entries it would observe count as recorded. Deliveries
// come in campaign name order, then customer id (then start time); when
// campaigns have different priorities and a cap is on, they are evaluated
// in priority order and held in memory to be given in that order.
func (p *Planner) DryRun(ctx context.Context, rules *audience.Rules, targets []*audience.Target, at time.Time, fn func(*Planned) error) ([]Stats, error) {
	at = at.UTC()
	var simulated []store.StageEntry
	if watched := watchedStages(targets); watched != nil {
		var err error
		if simulated, err = p.simulateSweep(ctx, rules, at, watched); err != nil {
			return nil, err
		}
	}
	cp := capOf(rules)
	ordered := ByPriority(targets)
	buffer := cp.On() && !slices.Equal(ordered, byName(targets))
	var (
		stats  []Stats
		held   []Planned
		ledger = freqcap.Ledger{} // this dry run's sends
	)
	emit := func(pl *Planned) error {
		if buffer {
			held = append(held, *pl)
			return nil
		}
		return fn(pl)
	}
	for _, t := range ordered {
		var batch []Planned
		flush := func() error {
			if err := p.applyCap(ctx, cp, batch, ledger); err != nil {
				return err
			}
			for i := range batch {
				if err := emit(&batch[i]); err != nil {
					return err
				}
			}
			batch = batch[:0]
			return nil
		}
		collect := func(pl *Planned) error {
			batch = append(batch, *pl)
			if len(batch) == 2000 {
				return flush()
			}
			return nil
		}
		var st Stats
		var err error
		if Triggered(t.Campaign) {
			// A triggered journey's entries are planned by the journey
			// code, which lists them itself.
			st, err = p.EvaluateTriggered(ctx, rules, t, at, simulated, collect)
		} else {
			st, err = p.Evaluate(ctx, rules, t, at, collect)
		}
		if err == nil {
			err = flush()
		}
		stats = append(stats, st)
		if err != nil {
			return stats, err
		}
	}
	if buffer {
		slices.SortStableFunc(held, func(a, b Planned) int {
			return cmp.Or(cmp.Compare(a.Campaign, b.Campaign), cmp.Compare(a.CustomerID, b.CustomerID),
				a.Occurrence.Compare(b.Occurrence), cmp.Compare(a.EventID, b.EventID))
		})
		for i := range held {
			if err := fn(&held[i]); err != nil {
				return stats, err
			}
		}
	}
	return stats, nil
}

// applyCap marks the planned deliveries of batch that the cap refuses as
// skipped, counting what is stored and what this dry run planned before.
func (p *Planner) applyCap(ctx context.Context, cp freqcap.Cap, batch []Planned, ledger freqcap.Ledger) error {
	if !cp.On() {
		return nil
	}
	var who []string
	var when []time.Time
	for _, pl := range batch {
		if pl.Status == store.StatusPlanned {
			who = append(who, pl.CustomerID)
			when = append(when, pl.SendAt)
		}
	}
	if len(who) == 0 {
		return nil
	}
	from, to := cp.Range(when)
	stored, err := p.store.CapLedger(ctx, who, from, to)
	if err != nil {
		return err
	}
	for i := range batch {
		pl := &batch[i]
		if pl.Status != store.StatusPlanned {
			continue
		}
		sends := append(slices.Clip(stored[pl.CustomerID]), ledger[pl.CustomerID]...)
		if !cp.Allows(sends, pl.SendAt) {
			pl.Status, pl.Reason = store.StatusSkipped, freqcap.Reason
			continue
		}
		ledger[pl.CustomerID] = append(ledger[pl.CustomerID], pl.SendAt)
	}
	return nil
}

func byName(targets []*audience.Target) []*audience.Target {
	out := slices.Clone(targets)
	slices.SortStableFunc(out, func(a, b *audience.Target) int { return cmp.Compare(a.Campaign.Name, b.Campaign.Name) })
	return out
}
