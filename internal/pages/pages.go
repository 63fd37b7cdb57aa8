// Package pages serves the results pages of the HTTP role (DESIGN.md,
// "Results", Pages): /campaigns, /campaigns/{name} and /lifecycle,
// server-rendered with inline SVG charts. They read only the rollups
// (campaign_daily, stage_counts, stage_flows) and the campaign files,
// never deliveries or customers, so a page costs the same on a million
// customers as on ten.
package pages

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"nurture/internal/campaign"
	"nurture/internal/report"
	"nurture/internal/store"
)

// Store is what the pages read.
type Store interface {
	CampaignTotals(ctx context.Context, campaign string) ([]store.ReportRow, error)
	CampaignDays(ctx context.Context, campaign string) ([]store.CampaignDay, error)
	RollupsRefreshedAt(ctx context.Context) (time.Time, bool, error)
	StageDays(ctx context.Context, from, to time.Time) ([]store.StageCount, error)
	StageLatest(ctx context.Context) ([]store.StageCount, error)
	StageFlows(ctx context.Context, from, to time.Time) ([]store.StageFlow, error)
}

// Config is what the pages need.
type Config struct {
	// Store holds the rollups. Required.
	Store Store
	// Campaigns returns the campaign files as loaded now. Required.
	Campaigns func() *campaign.Set
	// MonitoringPath is where the Asynq dashboard is mounted; campaign
	// pages link to their queue under it. Default "/monitoring/".
	MonitoringPath string
	// Now is the clock: /lifecycle's default period ends today. Default
	// time.Now.
	Now func() time.Time
	// Failed, when set, is told of each page that could not be read
	// (counted in metrics by the caller). Default: nothing.
	Failed func(page string)
	// Log receives those failures. Default: discarded.
	Log *slog.Logger
}

// Paths of the pages.
const (
	CampaignsPath = "/campaigns"
	LifecyclePath = "/lifecycle"
)

// Handlers returns the pages by ServeMux pattern.
func Handlers(cfg Config) map[string]http.Handler {
	if cfg.MonitoringPath == "" {
		cfg.MonitoringPath = "/monitoring/"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	p := &pages{cfg: cfg}
	return map[string]http.Handler{
		"GET " + CampaignsPath:             http.HandlerFunc(p.campaigns),
		"GET " + CampaignsPath + "/{name}": http.HandlerFunc(p.campaign),
		"GET " + LifecyclePath:             http.HandlerFunc(p.lifecycle),
	}
}

type pages struct{ cfg Config }

// fail answers a page that could not be read with a plain 500 page and
// reports it.
func (p *pages) fail(w http.ResponseWriter, r *http.Request, page string, err error) {
	p.cfg.Log.Error("results page failed", "page", page, "path", r.URL.Path, "err", err)
	if p.cfg.Failed != nil {
		p.cfg.Failed(page)
	}
	plain(w, http.StatusInternalServerError, "The results could not be read; the error is in the server's log.")
}

// plain answers a plain page with code and message.
func plain(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}

// render executes the named template into a buffer first, so that a
// failure answers a clean 500 rather than half a page.
func (p *pages) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		p.fail(w, r, name, fmt.Errorf("render: %w", err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

// freshness says how current the campaign rollup is.
func (p *pages) freshness(ctx context.Context) (string, error) {
	at, ok, err := p.cfg.Store.RollupsRefreshedAt(ctx)
	if err != nil {
		return "", err
	}
	if !ok {
		return "not counted yet: the scheduler's leader counts deliveries at its next trigger poll", nil
	}
	return "as of " + at.Format("2006-01-02 15:04:05 UTC"), nil
}

// row is one line of the report as shown.
type row struct {
	report.Line
	Whole, Variant, Step string
	Link                 string
	Skipped              int
	SkippedBy            string
	Uplift               string
}

func rowsOf(lines []report.Line) []row {
	out := make([]row, 0, len(lines))
	for _, l := range lines {
		r := row{Line: l}
		switch {
		case l.Variant != nil:
			r.Variant = *l.Variant
		case l.Step != nil:
			r.Step = fmt.Sprint(*l.Step)
		default:
			r.Whole = l.Campaign
			r.Link = CampaignsPath + "/" + url.PathEscape(l.Campaign)
		}
		var reasons []string
		for reason, n := range l.Skipped {
			r.Skipped += n
			reasons = append(reasons, fmt.Sprintf("%s: %d", reason, n))
		}
		slices.Sort(reasons)
		for i, s := range reasons {
			if i > 0 {
				r.SkippedBy += ", "
			}
			r.SkippedBy += s
		}
		if l.Uplift != nil {
			r.Uplift = fmt.Sprintf("%+.1f pts [%+.1f, %+.1f]", 100*l.Uplift.Value, 100*l.Uplift.Low, 100*l.Uplift.High)
		}
		out = append(out, r)
	}
	return out
}

func (p *pages) campaigns(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	totals, err := p.cfg.Store.CampaignTotals(ctx, "")
	if err != nil {
		p.fail(w, r, "campaigns", err)
		return
	}
	fresh, err := p.freshness(ctx)
	if err != nil {
		p.fail(w, r, "campaigns", err)
		return
	}
	lines := report.Build(totals, report.Campaigns(p.cfg.Campaigns()))
	p.render(w, r, "campaigns", map[string]any{"Title": "Campaigns", "Rows": rowsOf(lines), "Fresh": fresh})
}

// day is one day of a campaign as shown.
type day struct {
	store.CampaignDay
	Label          string
	ConversionRate float64
}

func (p *pages) campaign(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("name")
	set := p.cfg.Campaigns()
	c := set.Campaign(name)
	totals, err := p.cfg.Store.CampaignTotals(ctx, name)
	if err != nil {
		p.fail(w, r, "campaign", err)
		return
	}
	if c == nil && len(totals) == 0 {
		plain(w, http.StatusNotFound, fmt.Sprintf("No campaign %q: neither in the campaign files nor among the deliveries.", name))
		return
	}
	var desc []report.Campaign
	queue := "default"
	if c != nil {
		desc = []report.Campaign{{Name: c.Name, Holdout: c.HoldoutBasisPoints > 0, Journey: c.IsJourney()}}
		if c.Queue != "" {
			queue = c.Queue
		}
	}
	lines := report.Build(totals, desc)
	days, err := p.cfg.Store.CampaignDays(ctx, name)
	if err != nil {
		p.fail(w, r, "campaign", err)
		return
	}
	fresh, err := p.freshness(ctx)
	if err != nil {
		p.fail(w, r, "campaign", err)
		return
	}
	shown := make([]day, 0, len(days))
	labels := make([]string, 0, len(days))
	sent, opened := Series{Name: "sent", Color: colorOf(0)}, Series{Name: "opened", Color: colorOf(4)}
	clicked, converted := Series{Name: "clicked", Color: colorOf(3)}, Series{Name: "converted", Color: colorOf(1)}
	for _, d := range days {
		label := d.Day.Format("2006-01-02")
		shown = append(shown, day{CampaignDay: d, Label: label, ConversionRate: ratio(d.Converted, d.Sent)})
		labels = append(labels, label)
		sent.Values = append(sent.Values, float64(d.Sent))
		opened.Values = append(opened.Values, float64(d.Opened))
		clicked.Values = append(clicked.Values, float64(d.Clicked))
		converted.Values = append(converted.Values, float64(d.Converted))
	}
	var chart template.HTML
	if len(days) > 0 {
		chart = LineChart("Sent, opened, clicked and converted per day, "+name, labels, []Series{sent, opened, clicked, converted})
	}
	data := map[string]any{
		"Title": "Campaign " + name, "Name": name, "Configured": c != nil, "Rows": rowsOf(lines), "Days": shown, "Chart": chart,
		"Fresh": fresh, "Queue": queue, "QueueLink": p.cfg.MonitoringPath + "queues/" + url.PathEscape(queue),
	}
	if c != nil {
		data["Description"] = c.Description
	}
	p.render(w, r, "campaign", data)
}

func ratio(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// errPeriod is a period the lifecycle page refuses.
var errPeriod = errors.New("bad period")

// period reads ?from=YYYY-MM-DD&to=YYYY-MM-DD: both days included;
// default the 30 days ending today (UTC).
func period(q url.Values, now time.Time) (from, to time.Time, err error) {
	now = now.UTC()
	to = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	from = to.AddDate(0, 0, -29)
	parse := func(key string, into *time.Time) error {
		v := q.Get(key)
		if v == "" {
			return nil
		}
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return fmt.Errorf("%w: %s=%q is not a date as YYYY-MM-DD", errPeriod, key, v)
		}
		*into = t
		return nil
	}
	if err := parse("to", &to); err != nil {
		return from, to, err
	}
	if q.Get("from") == "" {
		from = to.AddDate(0, 0, -29)
	}
	if err := parse("from", &from); err != nil {
		return from, to, err
	}
	if to.Before(from) {
		return from, to, fmt.Errorf("%w: from %s is after to %s", errPeriod, from.Format(time.DateOnly), to.Format(time.DateOnly))
	}
	if to.Sub(from) > 3660*24*time.Hour {
		return from, to, fmt.Errorf("%w: at most ten years at once", errPeriod)
	}
	return from, to, nil
}

// stageRow is one stage as shown.
type stageRow struct {
	Stage     string
	Customers int
	Revenue   float64
	Average   float64
}

// flowCell is one cell of the journey map.
type flowCell struct {
	Customers int
	Diagonal  bool
}

func (p *pages) lifecycle(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	from, to, err := period(r.URL.Query(), p.cfg.Now())
	if err != nil {
		plain(w, http.StatusBadRequest, err.Error())
		return
	}
	end := to.AddDate(0, 0, 1)
	days, err := p.cfg.Store.StageDays(ctx, from, end)
	if err != nil {
		p.fail(w, r, "lifecycle", err)
		return
	}
	flows, err := p.cfg.Store.StageFlows(ctx, from, end)
	if err != nil {
		p.fail(w, r, "lifecycle", err)
		return
	}
	latest, err := p.cfg.Store.StageLatest(ctx)
	if err != nil {
		p.fail(w, r, "lifecycle", err)
		return
	}

	// Stages in lifecycle order, then any other seen in the history.
	var order []string
	for _, s := range p.cfg.Campaigns().Lifecycle.Stages {
		order = append(order, s.Name)
	}
	var extra []string
	add := func(s string) {
		if s != "" && !slices.Contains(order, s) && !slices.Contains(extra, s) {
			extra = append(extra, s)
		}
	}
	for _, c := range days {
		add(c.Stage)
	}
	for _, c := range latest {
		add(c.Stage)
	}
	for _, f := range flows {
		add(f.From)
		add(f.To)
	}
	slices.Sort(extra)
	order = append(order, extra...)

	// Customers per stage over time: the last sweep of each day.
	var labels []string
	index := map[time.Time]int{}
	for _, c := range days {
		d := time.Date(c.SweptAt.Year(), c.SweptAt.Month(), c.SweptAt.Day(), 0, 0, 0, 0, time.UTC)
		if _, ok := index[d]; !ok {
			index[d] = len(labels)
			labels = append(labels, d.Format(time.DateOnly))
		}
	}
	series := make([]Series, len(order))
	for i, s := range order {
		series[i] = Series{Name: s, Color: colorOf(i), Values: make([]float64, len(labels))}
	}
	for _, c := range days {
		d := time.Date(c.SweptAt.Year(), c.SweptAt.Month(), c.SweptAt.Day(), 0, 0, 0, 0, time.UTC)
		series[slices.Index(order, c.Stage)].Values[index[d]] = float64(c.Customers)
	}
	type dayRow struct {
		Label  string
		Counts []int
		Total  int
	}
	history := make([]dayRow, len(labels))
	for i, l := range labels {
		history[i] = dayRow{Label: l, Counts: make([]int, len(order))}
		for j := range order {
			n := int(series[j].Values[i])
			history[i].Counts[j] = n
			history[i].Total += n
		}
	}
	var chart template.HTML
	if len(labels) > 0 {
		chart = StackedArea("Customers per stage, last sweep of each day", labels, series)
	}

	// The journey map: from (rows, "" first for first recorded stages) to
	// (columns).
	froms := append([]string{""}, order...)
	matrix := make([][]flowCell, len(froms))
	for i := range froms {
		matrix[i] = make([]flowCell, len(order))
		for j := range order {
			matrix[i][j].Diagonal = froms[i] == order[j]
		}
	}
	var bars []Bar
	for _, f := range flows {
		matrix[slices.Index(froms, f.From)][slices.Index(order, f.To)].Customers = f.Customers
		if f.From != "" {
			bars = append(bars, Bar{Label: f.From + " → " + f.To, Value: float64(f.Customers), Color: colorOf(slices.Index(order, f.To))})
		}
	}
	slices.SortStableFunc(bars, func(a, b Bar) int {
		switch {
		case a.Value > b.Value:
			return -1
		case a.Value < b.Value:
			return 1
		}
		return 0
	})
	fromLabels := make([]string, len(froms))
	for i, f := range froms {
		fromLabels[i] = f
		if f == "" {
			fromLabels[i] = "(first seen)"
		}
	}

	// Revenue and average customer value per stage, at the latest sweep.
	var stages []stageRow
	var sweptAt string
	var total stageRow
	for _, s := range order {
		sr := stageRow{Stage: s}
		for _, c := range latest {
			if c.Stage == s {
				sr.Customers, sr.Revenue = c.Customers, c.TotalSpent
				sweptAt = c.SweptAt.Format("2006-01-02 15:04:05 UTC")
			}
		}
		sr.Average = ratioF(sr.Revenue, sr.Customers)
		total.Customers += sr.Customers
		total.Revenue += sr.Revenue
		stages = append(stages, sr)
	}
	total.Stage, total.Average = "all", ratioF(total.Revenue, total.Customers)

	p.render(w, r, "lifecycle", map[string]any{
		"Title": "Lifecycle", "From": from.Format(time.DateOnly), "To": to.Format(time.DateOnly),
		"Order": order, "History": history, "Chart": chart,
		"Froms": fromLabels, "Matrix": matrix, "FlowChart": BarChart("Stage changes, from → to", bars),
		"Stages": stages, "Total": total, "SweptAt": sweptAt,
	})
}

func ratioF(n float64, d int) float64 {
	if d == 0 {
		return 0
	}
	return n / float64(d)
}
