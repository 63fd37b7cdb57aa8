// Package report turns delivery counts into the campaign report of
// `nurture report` (DESIGN.md, "Results"): per campaign, then per variant
// and per step, what was planned, sent, skipped, held out, and what it
// earned, with the uplift against the holdout.
package report

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"nurture/internal/campaign"
	"nurture/internal/experiment"
	"nurture/internal/metrics"
	"nurture/internal/store"
)

// Line is one line of the report. Variant and Step are nil on a
// campaign's whole line; a variant line has Variant ("holdout" for the
// held-out entries), a step line has Step.
type Line struct {
	Campaign              string         `json:"campaign"`
	Variant               *string        `json:"variant"`
	Step                  *int           `json:"step"`
	Planned               int            `json:"planned"`
	Sent                  int            `json:"sent"`
	Failed                int            `json:"failed"`
	Skipped               map[string]int `json:"skipped"`
	HeldOut               int            `json:"held_out"`
	Unfinished            int            `json:"unfinished"`
	Opened                int            `json:"opened"`
	Clicked               int            `json:"clicked"`
	Unsubscribed          int            `json:"unsubscribed"`
	Bounced               int            `json:"bounced"`
	Complained            int            `json:"complained"`
	Converted             int            `json:"converted"`
	Revenue               float64        `json:"revenue"`
	ConversionRate        float64        `json:"conversion_rate"`
	HoldoutConverted      int            `json:"holdout_converted"`
	HoldoutConversionRate float64        `json:"holdout_conversion_rate"`
	Uplift                *Interval      `json:"uplift"`
}

// Interval is a difference of conversion rates with its 95 % confidence
// interval.
type Interval struct {
	Value float64 `json:"value"`
	Low   float64 `json:"low"`
	High  float64 `json:"high"`
}

// Campaign is what the report needs to know of a configured campaign.
type Campaign struct {
	Name string
	// Holdout says the campaign holds entries out: it gets a holdout line
	// and an uplift.
	Holdout bool
	// Journey says the campaign has steps: it gets a line per step.
	Journey bool
}

// Build makes the report of rows: for each campaign (configured ones
// first known by campaigns, in name order, and any other campaign with
// deliveries), its whole line, then a line per variant (in name order)
// and per step. Configured campaigns without deliveries get a line of
// zeros.
func Build(rows []store.ReportRow, campaigns []Campaign) []Line {
	byName := map[string]Campaign{}
	for _, c := range campaigns {
		byName[c.Name] = c
	}
	grouped := map[string][]store.ReportRow{}
	for _, r := range rows {
		grouped[r.Campaign] = append(grouped[r.Campaign], r)
		if _, ok := byName[r.Campaign]; !ok {
			byName[r.Campaign] = Campaign{Name: r.Campaign}
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []Line
	for _, name := range names {
		c, rs := byName[name], grouped[name]
		holdout := c.Holdout || slices.ContainsFunc(rs, func(r store.ReportRow) bool { return r.Variant == experiment.Holdout })
		whole := total(name, rs)
		if holdout {
			// Entries against entries: a held-out entry is one row, a
			// journey's entry one first step however many steps it sent.
			sent, converted := 0, 0
			for _, r := range rs {
				if r.Step == 1 && r.Status == store.StatusSent {
					sent += r.Deliveries
					converted += r.EntriesConverted
				}
			}
			whole.Uplift = uplift(converted, sent, whole.HoldoutConverted, whole.HeldOut)
		}
		out = append(out, whole)

		variants := map[string]bool{}
		if holdout {
			variants[experiment.Holdout] = true
		}
		steps := map[int]bool{}
		for _, r := range rs {
			if r.Variant != "" {
				variants[r.Variant] = true
			}
			if c.Journey || r.Step > 1 {
				steps[r.Step] = true
			}
		}
		for _, v := range sortedKeys(variants) {
			l := total(name, filter(rs, func(r store.ReportRow) bool { return r.Variant == v }))
			l.Variant = &v
			out = append(out, l)
		}
		for _, s := range sortedKeys(steps) {
			l := total(name, filter(rs, func(r store.ReportRow) bool { return r.Step == s }))
			l.Step = &s
			out = append(out, l)
		}
	}
	return out
}

func sortedKeys[K cmp.Ordered](m map[K]bool) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func filter(rs []store.ReportRow, keep func(store.ReportRow) bool) []store.ReportRow {
	var out []store.ReportRow
	for _, r := range rs {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

// total adds rows up into one line.
func total(campaign string, rs []store.ReportRow) Line {
	l := Line{Campaign: campaign, Skipped: map[string]int{}}
	for _, r := range rs {
		l.Planned += r.Deliveries
		l.Unsubscribed += r.Unsubscribed
		l.Opened += r.Opened
		l.Clicked += r.Clicked
		l.Bounced += r.Bounced
		l.Complained += r.Complained
		switch r.Status {
		case store.StatusSent:
			l.Sent += r.Deliveries
			l.Converted += r.Converted
			l.Revenue += r.Revenue
		case store.StatusFailed:
			l.Failed += r.Deliveries
		case store.StatusSkipped:
			l.Skipped[cmp.Or(r.Reason, "unknown")] += r.Deliveries
		case store.StatusHeldOut:
			l.HeldOut += r.Deliveries
			l.HoldoutConverted += r.Converted
		default: // planned, queued, sending
			l.Unfinished += r.Deliveries
		}
	}
	l.Revenue = math.Round(l.Revenue*100) / 100
	l.ConversionRate = ratio(l.Converted, l.Sent)
	l.HoldoutConversionRate = ratio(l.HoldoutConverted, l.HeldOut)
	return l
}

func ratio(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// z is the 97.5th percentile of the standard normal distribution.
const z = 1.959963984540054

// uplift is the difference of the conversion rates of the sent (x1 of
// n1) and held-out (x0 of n0) deliveries with its 95 % interval by
// Newcombe's hybrid score method (each rate's Wilson interval, combined);
// nil when either group is empty.
func uplift(x1, n1, x0, n0 int) *Interval {
	if n1 == 0 || n0 == 0 {
		return nil
	}
	p1, p0 := ratio(x1, n1), ratio(x0, n0)
	l1, u1 := wilson(x1, n1)
	l0, u0 := wilson(x0, n0)
	d := p1 - p0
	return &Interval{
		Value: round(d),
		Low:   round(d - math.Sqrt((p1-l1)*(p1-l1)+(u0-p0)*(u0-p0))),
		High:  round(d + math.Sqrt((u1-p1)*(u1-p1)+(p0-l0)*(p0-l0))),
	}
}

// wilson is the Wilson score interval of x successes in n at 95 %.
func wilson(x, n int) (low, high float64) {
	p, nf := float64(x)/float64(n), float64(n)
	centre := (p + z*z/(2*nf)) / (1 + z*z/nf)
	half := z / (1 + z*z/nf) * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf))
	return centre - half, centre + half
}

// round keeps 6 decimals: the report shows rates, not noise.
func round(f float64) float64 { return math.Round(f*1e6) / 1e6 }

// Campaigns describes the campaigns of set for Build.
func Campaigns(set *campaign.Set) []Campaign {
	out := make([]Campaign, 0, len(set.Campaigns))
	for _, c := range set.Campaigns {
		out = append(out, Campaign{Name: c.Name, Holdout: c.HoldoutBasisPoints > 0, Journey: c.IsJourney()})
	}
	return out
}

// Windows are the conversion windows of set's campaigns, for attribution.
func Windows(set *campaign.Set) store.Windows {
	by, def := set.ConversionWindows()
	return store.Windows{By: by, Default: def}
}

// WriteText writes lines as a table, then the skip reasons of each
// campaign.
func WriteText(w io.Writer, lines []Line) {
	fmt.Fprintf(w, "%-16s %-9s %-4s %7s %7s %6s %7s %8s %6s %6s %7s %6s %9s %6s %10s  %s\n", "CAMPAIGN", "VARIANT", "STEP",
		"PLANNED", "SENT", "FAILED", "SKIPPED", "HELD_OUT", "UNFIN", "OPENED", "CLICKED", "CONV", "CONV_RATE", "UNSUB", "REVENUE", "UPLIFT (95% CI)")
	for _, l := range lines {
		variant, step := "", ""
		if l.Variant != nil {
			variant = *l.Variant
		}
		if l.Step != nil {
			step = fmt.Sprint(*l.Step)
		}
		skipped := 0
		for _, n := range l.Skipped {
			skipped += n
		}
		uplift := ""
		if l.Uplift != nil {
			uplift = fmt.Sprintf("%+.1f pts [%+.1f, %+.1f]", 100*l.Uplift.Value, 100*l.Uplift.Low, 100*l.Uplift.High)
		}
		line := fmt.Sprintf("%-16s %-9s %-4s %7d %7d %6d %7d %8d %6d %6d %7d %6d %8.1f%% %6d %10.2f  %s", l.Campaign, variant, step,
			l.Planned, l.Sent, l.Failed, skipped, l.HeldOut, l.Unfinished, l.Opened, l.Clicked, l.Converted, 100*l.ConversionRate, l.Unsubscribed, l.Revenue, uplift)
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	if len(lines) == 0 {
		fmt.Fprintln(w, "(no campaigns)")
	}
	var reasons []string
	for _, l := range lines {
		if l.Variant == nil && l.Step == nil {
			for r, n := range l.Skipped {
				reasons = append(reasons, fmt.Sprintf("%s: %d %s", l.Campaign, n, r))
			}
		}
	}
	if len(reasons) > 0 {
		slices.Sort(reasons)
		fmt.Fprintln(w)
		fmt.Fprintf(w, "skipped: %s\n", strings.Join(reasons, "; "))
	}
}

// Results adds rows up per campaign for the metrics of the HTTP role:
// deliveries by status, and the sent ones opened, clicked and converted.
func Results(rows []store.ReportRow) []metrics.CampaignResults {
	by := map[string]*metrics.CampaignResults{}
	var names []string
	for _, r := range rows {
		c := by[r.Campaign]
		if c == nil {
			c = &metrics.CampaignResults{Campaign: r.Campaign, Deliveries: map[string]int{}}
			by[r.Campaign] = c
			names = append(names, r.Campaign)
		}
		c.Deliveries[r.Status] += r.Deliveries
		c.Opened += r.Opened
		c.Clicked += r.Clicked
		if r.Status == store.StatusSent {
			c.Converted += r.Converted
			c.Revenue += r.Revenue
		}
	}
	slices.Sort(names)
	out := make([]metrics.CampaignResults, 0, len(names))
	for _, n := range names {
		out = append(out, *by[n])
	}
	return out
}
