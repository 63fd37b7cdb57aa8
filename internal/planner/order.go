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
		if simulated, err = p.simulateSweep(ctx, rules, at, watched, ""); err != nil {
			return nil, err
		}
	}
	cp := capOf(rules)
	ordered := ByPriority(targets)
	journeys := slices.ContainsFunc(targets, func(t *audience.Target) bool { return t.Campaign.IsJourney() })
	// Rows come out of evaluation in campaign name and customer order
	// unless priorities reorder campaigns or journeys add their steps
	// after every entry: then they are held and sorted.
	buffer := journeys || cp.On() && !slices.Equal(ordered, byName(targets))
	var (
		stats []Stats
		held  []Planned
	)
	b := &capBatch{p: p, cp: cp, ledger: freqcap.Ledger{}, emit: func(pl *Planned) error {
		if buffer {
			held = append(held, *pl)
			return nil
		}
		return fn(pl)
	}}
	add := func(pl *Planned) error { return b.add(ctx, pl) }
	for _, t := range ordered {
		var st Stats
		var err error
		if Triggered(t.Campaign) {
			st, err = p.EvaluateTriggered(ctx, rules, t, at, simulated, add)
		} else {
			st, err = p.Evaluate(ctx, rules, t, at, add)
		}
		if err == nil {
			err = b.flush(ctx)
		}
		stats = append(stats, st)
		if err != nil {
			return stats, err
		}
	}
	// Then the due steps of journeys under way, as run-once plans them
	// after the entries.
	for _, t := range ordered {
		err := p.dryJourneys(ctx, rules, t, at, add)
		if err == nil {
			err = b.flush(ctx)
		}
		if err != nil {
			return stats, err
		}
	}
	if buffer {
		slices.SortStableFunc(held, func(a, b Planned) int {
			return cmp.Or(cmp.Compare(a.Campaign, b.Campaign), cmp.Compare(a.CustomerID, b.CustomerID),
				a.Occurrence.Compare(b.Occurrence), cmp.Compare(a.Step, b.Step), cmp.Compare(a.EventID, b.EventID))
		})
		for i := range held {
			if err := fn(&held[i]); err != nil {
				return stats, err
			}
		}
	}
	return stats, nil
}

// capBatch applies the frequency cap of a dry run to batches of rows
// before it gives them to emit.
type capBatch struct {
	p      *Planner
	cp     freqcap.Cap
	ledger freqcap.Ledger // the dry run's own sends so far
	emit   func(*Planned) error
	rows   []Planned
}

func (b *capBatch) add(ctx context.Context, pl *Planned) error {
	b.rows = append(b.rows, *pl)
	if len(b.rows) == 2000 {
		return b.flush(ctx)
	}
	return nil
}

func (b *capBatch) flush(ctx context.Context) error {
	if err := b.p.applyCap(ctx, b.cp, b.rows, b.ledger); err != nil {
		return err
	}
	for i := range b.rows {
		if err := b.emit(&b.rows[i]); err != nil {
			return err
		}
	}
	b.rows = b.rows[:0]
	return nil
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
