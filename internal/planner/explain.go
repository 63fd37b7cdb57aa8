package planner

import (
	"context"
	"fmt"
	"strings"
	"time"

	"nurture/internal/audience"
	"nurture/internal/campaign"
	"nurture/internal/freqcap"
	"nurture/internal/store"
)

// Explanation says why one customer would or would not be planned by each
// campaign at one instant (`nurture explain`).
type Explanation struct {
	CustomerID string         `json:"customer_id"`
	At         time.Time      `json:"at"`
	Facts      map[string]any `json:"facts"`
	Stage      string         `json:"stage"`
	// StageHistory is every stage change the sweeps recorded, oldest
	// first; Deliveries every delivery row of the customer.
	StageHistory []StageChange `json:"stage_history"`
	Deliveries   []Delivery    `json:"deliveries"`
	Campaigns    []Verdict     `json:"campaigns"`
}

// Verdict is one campaign's answer for the customer.
type Verdict struct {
	Campaign string `json:"campaign"`
	// Planned says the evaluation at the instant would record a delivery
	// (an email to send, or a held-out entry).
	Planned bool `json:"planned"`
	// Rule is the first rule that keeps the customer out (see DESIGN.md:
	// stage, inactive_days, where, cooldown, max_sends, exit_when,
	// unsubscribed, suppressed, frequency cap, not due), and Detail says
	// it in words.
	Rule   string `json:"rule,omitempty"`
	Detail string `json:"detail,omitempty"`
	// For a planned delivery: its status, step, template, variant and
	// send time.
	Status   string     `json:"status,omitempty"`
	Step     int        `json:"step,omitempty"`
	Template string     `json:"template,omitempty"`
	Variant  string     `json:"variant,omitempty"`
	SendAt   *time.Time `json:"send_at,omitempty"`
}

// RuleNotDue is the rule of a campaign that has nothing due for the
// customer at the instant: a trigger without a due event, or a journey
// step whose time has not come.
const (
	RuleNotDue   = "not due"
	RuleExitWhen = "exit_when"
	RuleCapped   = "frequency cap"
	RulePlanned  = "already planned"
	RuleError    = "expression error"
)

// Explain evaluates every campaign of rules for customer id at the instant
// at, as an evaluation at that instant would (campaigns in priority order,
// sharing the global cap), and says why each would plan them or not.
// Scheduled campaigns are evaluated as if they fired at at, as `plan` does.
func (p *Planner) Explain(ctx context.Context, rules *audience.Rules, id string, at time.Time) (*Explanation, error) {
	at = at.UTC()
	cu, err := p.store.Customer(ctx, id)
	if err != nil {
		return nil, err
	}
	hist, err := p.store.History(ctx, id, at)
	if err != nil {
		return nil, err
	}
	facts := audience.FactsAt(&cu, at)
	stage, err := rules.Stage(&facts)
	if err != nil {
		return nil, fmt.Errorf("customer %q: %w", id, err)
	}
	facts.Stage = stage
	ex := &Explanation{CustomerID: id, At: at, Facts: factsMap(&cu, &facts), Stage: stage,
		StageHistory: []StageChange{}, Deliveries: []Delivery{}}
	changes, err := p.store.StageHistory(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, c := range changes {
		ex.StageHistory = append(ex.StageHistory, StageChange{From: c.From, To: c.To, ObservedAt: c.ObservedAt.UTC(), Entry: c.Entry})
	}
	if err := p.store.DeliveriesWhere(ctx, store.DeliveryFilter{CustomerID: id}, func(d *store.DeliveryRow) error {
		ex.Deliveries = append(ex.Deliveries, ViewDelivery(d))
		return nil
	}); err != nil {
		return nil, err
	}

	cp := capOf(rules)
	var ledger freqcap.Ledger
	if cp.On() {
		ledger, err = p.store.CapLedger(ctx, []string{id}, at.Add(-cp.Per-31*24*time.Hour), at.Add(cp.Per+31*24*time.Hour))
		if err != nil {
			return nil, err
		}
	}
	// Stage triggers see the entries a sweep at the instant would record,
	// as plan does.
	var simulated []store.StageEntry
	if watched := watchedStages(rules.Targets()); len(watched) > 0 {
		if simulated, err = p.simulateSweep(ctx, rules, at, watched, id); err != nil {
			return nil, err
		}
	}
	verdicts := map[string]Verdict{}
	for _, t := range ByPriority(rules.Targets()) {
		var v Verdict
		if t.Campaign.Trigger != nil && t.Campaign.Enabled {
			if v, err = p.triggerVerdict(ctx, rules, t, &cu, at, simulated); err != nil {
				return nil, err
			}
		} else {
			v = p.verdict(rules, t, &cu, &facts, hist, at)
		}
		if v.Planned && v.Status == store.StatusPlanned && cp.On() {
			if !ledger.Decide(cp, id, *v.SendAt) {
				v = Verdict{Campaign: v.Campaign, Rule: RuleCapped,
					Detail: fmt.Sprintf("%d email(s) already within %s of %s", cp.Max, cp.Per, v.SendAt.Format(time.RFC3339))}
			}
		}
		verdicts[t.Campaign.Name] = v
	}
	for _, t := range rules.Targets() { // name order
		ex.Campaigns = append(ex.Campaigns, verdicts[t.Campaign.Name])
	}
	return ex, nil
}

// verdict is one campaign's answer, before the global cap.
func (p *Planner) verdict(rules *audience.Rules, t *audience.Target, cu *audience.Customer, f *audience.Facts, hist store.CustomerHistory, at time.Time) Verdict {
	c := t.Campaign
	v := Verdict{Campaign: c.Name}
	h := hist.Emails[c.Name]
	if c.IsJourney() {
		h = hist.Journeys[c.Name]
	}
	rule, err := t.Why(cu, f, h, at)
	if err == nil && rule == "" {
		var exit bool
		if exit, err = t.ExitWhen(f); exit {
			rule = RuleExitWhen
		}
	}
	if err != nil {
		v.Rule, v.Detail = RuleError, err.Error()
		return v
	}
	if rule != "" {
		v.Rule, v.Detail = rule, detail(rule, c, cu, f, h)
		return v
	}
	if h.Planned {
		v.Rule, v.Detail = RulePlanned, "a delivery at this instant exists already"
		return v
	}
	// In the audience: what would be recorded.
	rows := p.entryRows(rules, t, cu, f, at, "", at)
	if len(rows) == 0 {
		v.Planned = true
		v.Detail = fmt.Sprintf("enters the journey; step 1 is due at %s", at.Add(c.Steps[0].After).Format(time.RFC3339))
		return v
	}
	r := rows[0]
	v.Planned, v.Status, v.Step, v.Template, v.Variant = true, r.Status, r.Step, r.Template, r.Variant
	sendAt := r.SendAt
	v.SendAt = &sendAt
	if r.Status == store.StatusSkipped {
		v.Planned, v.Rule, v.Detail = false, RuleWhere, "the step's where is false"
	}
	return v
}

// entryRows are the rows an entry of cu (facts f) into t's campaign,
// started at start, would record at now: its journey's due steps, or its
// one email moved into the send window and put in its experiment group.
func (p *Planner) entryRows(rules *audience.Rules, t *audience.Target, cu *audience.Customer, f *audience.Facts, start time.Time, eventID string, now time.Time) []Planned {
	c := t.Campaign
	if c.IsJourney() {
		var (
			rows []Planned
			st   Stats
		)
		collect := func(pl *Planned) error { rows = append(rows, *pl); return nil }
		_ = p.enterJourney(rules, t, cu, f, start, eventID, &st, collect, nil)
		return rows
	}
	pl := Planned{Campaign: c.Name, CustomerID: cu.ID, Template: c.Email.Template, SendAt: now, Step: 1, Status: store.StatusPlanned}
	if win := rules.Set().EffectiveWindow(c); win != nil {
		pl.SendAt = win.SendAt(now, p.zones.Load(cu.Timezone))
	}
	p.assign(&pl, c, experimentOf(c))
	return []Planned{pl}
}

// triggerVerdict is the answer of the triggered campaign t: planned for
// the first of the customer's due entries that passes every rule,
// otherwise the rule that kept out the last one, or "not due" when none is
// due.
func (p *Planner) triggerVerdict(ctx context.Context, rules *audience.Rules, t *audience.Target, cu *audience.Customer, at time.Time, simulated []store.StageEntry) (Verdict, error) {
	c := t.Campaign
	v := Verdict{Campaign: c.Name, Rule: RuleNotDue,
		Detail: fmt.Sprintf("no entry by %s is due in (%s, %s]", triggerName(c.Trigger), at.Add(-within(c.Trigger)).Format(time.RFC3339), at.Format(time.RFC3339))}
	decided := false
	f := dueFilter(c, at, simulated)
	f.Customer = cu.ID
	err := p.store.DueEntries(ctx, f, func(e *store.DueEntry) error {
		if decided || e.Customer.ID != cu.ID {
			return nil
		}
		f := audience.FactsAt(&e.Customer, at)
		stage, err := rules.Stage(&f)
		if err != nil {
			v = Verdict{Campaign: c.Name, Rule: RuleError, Detail: err.Error()}
			return nil
		}
		f.Stage = stage
		rule, err := t.Why(&e.Customer, &f, e.History, at)
		f.Event = e.Event
		if err == nil && rule == "" && e.Event != nil {
			var ok bool
			if ok, err = t.TriggerWhere(&f); !ok && err == nil {
				rule = RuleWhere
			}
		}
		if err == nil && rule == "" {
			var exit bool
			if exit, err = t.ExitWhen(&f); exit {
				rule = RuleExitWhen
			}
		}
		switch {
		case err != nil:
			v = Verdict{Campaign: c.Name, Rule: RuleError, Detail: err.Error()}
		case rule != "":
			v = Verdict{Campaign: c.Name, Rule: rule, Detail: detail(rule, c, &e.Customer, &f, e.History) + entryName(e)}
		default:
			decided = true
			v = Verdict{Campaign: c.Name, Planned: true, Status: store.StatusPlanned, Step: 1, Detail: "entry" + entryName(e)}
			rows := p.entryRows(rules, t, &e.Customer, &f, e.Due, e.EventID, at)
			if len(rows) > 0 {
				r := rows[0]
				v.Status, v.Step, v.Template, v.Variant = r.Status, r.Step, r.Template, r.Variant
				sendAt := r.SendAt
				v.SendAt = &sendAt
			}
		}
		return nil
	})
	return v, err
}

// entryName says which entry a trigger verdict is about.
func entryName(e *store.DueEntry) string {
	if e.EventID != "" {
		return " (event " + e.EventID + ")"
	}
	return " (stage entry at " + e.Due.Format(time.RFC3339) + ")"
}

// RuleWhere is audience.RuleWhere, for a step's where too.
const RuleWhere = audience.RuleWhere

func triggerName(t *campaign.Trigger) string {
	if t.Event != "" {
		return "event " + t.Event
	}
	return "entering stage " + t.EnteredStage
}

// detail says in words why rule keeps the customer out.
func detail(rule string, c *campaign.Campaign, cu *audience.Customer, f *audience.Facts, h audience.History) string {
	switch rule {
	case audience.RuleDisabled:
		return "the campaign is disabled"
	case audience.RuleUnsubscribed:
		return "the customer is unsubscribed"
	case audience.RuleSuppressed:
		return cu.Email + " is on the suppression list"
	case audience.RuleStage:
		return fmt.Sprintf("stage is %s; the campaign targets %s", f.Stage, strings.Join(c.Audience.Stages, ", "))
	case audience.RuleInactiveDays:
		return fmt.Sprintf("inactive for %d days; the campaign wants %s", f.InactiveDays, bounds(c.Audience.MinInactive, c.Audience.MaxInactive))
	case audience.RuleMaxSends:
		return fmt.Sprintf("%d of max_sends %d used", h.Sends, c.Frequency.MaxSends)
	case audience.RuleMaxEntries:
		return fmt.Sprintf("%d of max_entries %d used", h.Sends, c.Frequency.MaxEntries)
	case audience.RuleJourney:
		return "a journey of this campaign is under way"
	case audience.RuleCooldown:
		return fmt.Sprintf("last entry %s is within the cooldown of %s", h.LastOccurrence.Format(time.RFC3339), c.Frequency.Cooldown)
	case audience.RuleWhere:
		return "audience.where is false"
	case RuleExitWhen:
		return "exit_when is true"
	}
	return ""
}

func bounds(lo, hi *int) string {
	switch {
	case lo != nil && hi != nil:
		return fmt.Sprintf("%d..%d", *lo, *hi)
	case lo != nil:
		return fmt.Sprintf("at least %d", *lo)
	case hi != nil:
		return fmt.Sprintf("at most %d", *hi)
	}
	return "any"
}

// factsMap is the facts as explain prints them, named as expressions name
// them.
func factsMap(cu *audience.Customer, f *audience.Facts) map[string]any {
	m := map[string]any{
		"id": f.ID, "email": f.Email, "first_name": f.FirstName, "timezone": f.Timezone,
		"subscribed": cu.Subscribed, "suppressed": cu.Suppressed,
		"orders_count": f.OrdersCount, "total_spent": f.TotalSpent,
		"inactive_days": f.InactiveDays, "days_since_signup": f.DaysSinceSignup,
		"days_since_purchase": f.DaysSincePurchase, "attributes": f.Attributes,
		"created_at": f.CreatedAt, "last_active_at": f.LastActiveAt,
		"first_purchase_at": f.FirstPurchaseAt, "last_purchase_at": f.LastPurchaseAt,
	}
	return m
}
