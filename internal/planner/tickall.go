package planner

import (
	"context"
	"fmt"
	"io"
	"time"

	"nurture/internal/audience"
)

// RunOnce is what `nurture run-once --at` does: the stage sweep at at,
// then TickAll. A sweep refused because at is before the latest sweep is
// reported, not an error: scheduled campaigns still fire at at.
func (p *Planner) RunOnce(ctx context.Context, rules *audience.Rules, targets []*audience.Target, at time.Time, q Enqueuer, out io.Writer) ([]TickResult, error) {
	sw, err := p.Sweep(ctx, rules, at)
	if err != nil {
		return nil, err
	}
	if sw.Refused {
		fmt.Fprintf(out, "%-18s not recorded: stage history already runs to %s and never moves backwards\n",
			"stage sweep", sw.Latest.Format(time.RFC3339))
	} else {
		fmt.Fprintf(out, "%-18s customers=%d baselines=%d changes=%d entries=%d%s\n", "stage sweep",
			sw.Customers, sw.Baselines, sw.Changes, sw.Entries, failedNote(sw.Failed))
	}
	return p.TickAll(ctx, rules, targets, at, q, out)
}

func failedNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" failed=%d", n)
}

// TickAll ticks each target at the instant at, in descending priority then
// name (see ByPriority), writing a line per campaign to out: what its tick
// found, or that it is disabled. A scheduled campaign is planned as if it
// fired at at; a triggered one plans its entries due at at (the
// candidates it reports are those due entries). It stops at the first
// error and returns the results so far.
func (p *Planner) TickAll(ctx context.Context, rules *audience.Rules, targets []*audience.Target, at time.Time, q Enqueuer, out io.Writer) ([]TickResult, error) {
	var results []TickResult
	for _, t := range ByPriority(targets) {
		if !t.Campaign.Enabled {
			fmt.Fprintf(out, "%-18s disabled\n", t.Campaign.Name)
			continue
		}
		var res TickResult
		var err error
		if Triggered(t.Campaign) {
			res, err = p.TickTriggered(ctx, rules, t, at, q, TickOptions{})
		} else {
			res, err = p.Tick(ctx, rules, t, at, q, TickOptions{})
		}
		results = append(results, res)
		fmt.Fprintf(out, "%-18s candidates=%d matched=%d planned=%d enqueued=%d%s\n",
			t.Campaign.Name, res.Candidates, res.Matched, res.Planned, res.Enqueued, extras(res))
		if err != nil {
			return results, err
		}
	}
	return results, nil
}

// extras lists the counts only the new features produce, so a run without
// them prints what it always printed.
func extras(r TickResult) string {
	s := ""
	if r.NewHeldOut > 0 {
		s += fmt.Sprintf(" held_out=%d", r.NewHeldOut)
	}
	if r.Capped > 0 {
		s += fmt.Sprintf(" capped=%d", r.Capped)
	}
	return s
}

// StepAll plans the due journey steps of every journey among targets at
// the instant at, in the order of ByPriority, writing a line per journey
// that moved to out. Journeys of campaigns that are no longer journeys in
// rules end first, with reason "campaign removed" (disabled campaigns keep
// theirs: their journeys wait).
func (p *Planner) StepAll(ctx context.Context, rules *audience.Rules, targets []*audience.Target, at time.Time, q Enqueuer, out io.Writer) ([]JourneyResult, error) {
	var keep []string
	for _, c := range rules.Set().Campaigns {
		if c.IsJourney() {
			keep = append(keep, c.Name)
		}
	}
	ended, err := p.store.ExitRemovedJourneys(ctx, keep)
	if err != nil {
		return nil, err
	}
	if ended > 0 {
		fmt.Fprintf(out, "%d journey(s) of removed campaigns ended\n", ended)
		p.log.Info("journeys of removed campaigns ended", "count", ended)
	}
	var results []JourneyResult
	for _, t := range ByPriority(targets) {
		if !t.Campaign.IsJourney() || !t.Campaign.Enabled {
			continue
		}
		res, err := p.Steps(ctx, rules, t, at, q)
		results = append(results, res)
		if res.Moved > 0 {
			fmt.Fprintf(out, "%-18s journeys moved=%d planned=%d enqueued=%d%s\n",
				t.Campaign.Name, res.Moved, res.Planned, res.Enqueued, extras(TickResult{Capped: res.Capped}))
		}
		if err != nil {
			return results, err
		}
	}
	return results, nil
}
