package pages

import (
	"fmt"
	"html/template"
)

var funcs = template.FuncMap{
	"pct":   func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"money": func(f float64) string { return fmt.Sprintf("%.2f", f) },
}

// tmpl holds the pages: a layout and one body per page.
var tmpl = template.Must(template.New("pages").Funcs(funcs).Parse(layout + campaignsPage + campaignPage + lifecyclePage))

const layout = `{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · nurture</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#111827;background:#f9fafb}
header{background:#111827;color:#fff;padding:.6rem 1rem}
header a{color:#fff;margin-right:1rem;text-decoration:none}
main{padding:1rem;max-width:1200px;margin:auto}
h1{font-size:1.4rem;margin:.2rem 0 .6rem}
h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
.note{color:#4b5563;font-size:.9rem}
.chart{width:100%;max-width:760px;height:auto;background:#fff;border:1px solid #e5e7eb}
.legend span{margin-right:1rem;white-space:nowrap}
.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}
table{border-collapse:collapse;background:#fff;margin:.4rem 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #e5e7eb;padding:.3rem .5rem;text-align:right;vertical-align:top}
td{white-space:nowrap}
.wide{overflow-x:auto}
th:first-child,td:first-child{text-align:left}
th{background:#f3f4f6}
tr.whole td{font-weight:600}
td.diag{background:#f3f4f6;color:#9ca3af}
form input{font:inherit;padding:.2rem}
@media (max-width:700px){
 table.cards thead{display:none}
 table.cards,table.cards tbody,table.cards tr,table.cards td{display:block;width:100%;box-sizing:border-box}
 table.cards tr{margin-bottom:.6rem;border:1px solid #d1d5db}
 table.cards td{border:0;border-bottom:1px solid #f3f4f6;display:flex;justify-content:space-between;gap:1rem}
 table.cards td:empty{display:none}
 table.cards td::before{content:attr(data-label);font-weight:600;color:#374151}
}
</style></head><body>
<header><a href="/campaigns">Campaigns</a><a href="/lifecycle">Lifecycle</a><a href="/monitoring/">Queues</a></header>
<main>{{end}}
{{define "foot"}}</main></body></html>
{{end}}
{{define "report"}}<div class="wide"><table class="cards" id="report"><thead><tr>
<th>Campaign</th><th>Variant</th><th>Step</th><th>Planned</th><th>Sent</th><th>Failed</th><th>Skipped</th><th>Held out</th><th>Unfinished</th>
<th>Opened</th><th>Clicked</th><th>Unsubscribed</th><th>Bounced</th><th>Complained</th><th>Converted</th><th>Conv. rate</th><th>Revenue</th><th>Holdout conv.</th><th>Uplift (95% CI)</th>
</tr></thead><tbody>
{{range .}}<tr{{if .Whole}} class="whole"{{end}} data-campaign="{{.Campaign}}">
<td data-label="Campaign">{{if .Link}}<a href="{{.Link}}">{{.Whole}}</a>{{else}}{{.Campaign}}{{end}}</td>
<td data-label="Variant">{{.Variant}}</td><td data-label="Step">{{.Step}}</td>
<td data-label="Planned">{{.Planned}}</td><td data-label="Sent">{{.Sent}}</td><td data-label="Failed">{{.Failed}}</td>
<td data-label="Skipped"{{if .SkippedBy}} title="{{.SkippedBy}}"{{end}}>{{.Skipped}}</td>
<td data-label="Held out">{{.HeldOut}}</td><td data-label="Unfinished">{{.Unfinished}}</td>
<td data-label="Opened">{{.Opened}}</td><td data-label="Clicked">{{.Clicked}}</td><td data-label="Unsubscribed">{{.Unsubscribed}}</td>
<td data-label="Bounced">{{.Bounced}}</td><td data-label="Complained">{{.Complained}}</td>
<td data-label="Converted">{{.Converted}}</td><td data-label="Conv. rate">{{pct .ConversionRate}}</td><td data-label="Revenue">{{money .Revenue}}</td>
<td data-label="Holdout conv.">{{if .HeldOut}}{{.HoldoutConverted}} ({{pct .HoldoutConversionRate}}){{end}}</td>
<td data-label="Uplift (95% CI)">{{.Uplift}}</td>
</tr>
{{else}}<tr><td colspan="19">No campaigns.</td></tr>
{{end}}</tbody></table></div>{{end}}
`

const campaignsPage = `{{define "campaigns"}}{{template "head" .}}
<h1>Campaigns</h1>
<p class="note">Every delivery of every campaign, {{.Fresh}}. Skipped counts hover to show their reasons; opens and clicks are people's (machine-made ones left out); conversions and revenue count sent deliveries, the holdout's are beside them.</p>
{{template "report" .Rows}}
{{range .Rows}}{{if .SkippedBy}}{{if .Whole}}<p class="note">{{.Campaign}} skipped: {{.SkippedBy}}</p>{{end}}{{end}}{{end}}
{{template "foot"}}{{end}}
`

const campaignPage = `{{define "campaign"}}{{template "head" .}}
<h1>{{.Name}}</h1>
{{with .Description}}<p>{{.}}</p>{{end}}
{{if not .Configured}}<p class="note">Not in the campaign files any more: its deliveries remain.</p>{{end}}
<p><a href="/campaigns">← all campaigns</a> · <a id="queue" href="{{.QueueLink}}">queue {{.Queue}} in the dashboard</a></p>
<p class="note">Counts {{.Fresh}}, by the day each delivery was due (send_at, UTC).</p>
<h2>Totals, variants and steps</h2>
{{template "report" .Rows}}
<h2>Per day</h2>
{{if .Chart}}{{.Chart}}{{else}}<p>No deliveries yet.</p>{{end}}
<div class="wide"><table class="cards" id="days"><thead><tr><th>Day</th><th>Planned</th><th>Sent</th><th>Opened</th><th>Clicked</th><th>Converted</th><th>Conv. rate</th><th>Revenue</th></tr></thead><tbody>
{{range .Days}}<tr data-day="{{.Label}}"><td data-label="Day">{{.Label}}</td><td data-label="Planned">{{.Planned}}</td><td data-label="Sent">{{.Sent}}</td>
<td data-label="Opened">{{.Opened}}</td><td data-label="Clicked">{{.Clicked}}</td><td data-label="Converted">{{.Converted}}</td>
<td data-label="Conv. rate">{{pct .ConversionRate}}</td><td data-label="Revenue">{{money .Revenue}}</td></tr>
{{end}}</tbody></table></div>
{{template "foot"}}{{end}}
`

const lifecyclePage = `{{define "lifecycle"}}{{template "head" .}}
<h1>Lifecycle</h1>
<form method="get" action="/lifecycle"><label>From <input type="date" name="from" value="{{.From}}"></label>
<label>to <input type="date" name="to" value="{{.To}}"></label> <button type="submit">Show</button></form>
<p class="note">From {{.From}} to {{.To}} (UTC days, both included), as recorded by the stage sweeps.</p>
<h2>Customers per stage</h2>
{{if .Chart}}{{.Chart}}{{else}}<p>No sweep in this period.</p>{{end}}
<div class="wide"><table id="history"><thead><tr><th>Day</th>{{range .Order}}<th>{{.}}</th>{{end}}<th>All</th></tr></thead><tbody>
{{range .History}}<tr data-day="{{.Label}}"><td>{{.Label}}</td>{{range .Counts}}<td>{{.}}</td>{{end}}<td>{{.Total}}</td></tr>
{{end}}</tbody></table></div>
<h2>Journey map: stage changes</h2>
<p class="note">Customers seen moving from the stage of a row to the stage of a column by the sweeps of the period; "(first seen)" are first recorded stages.</p>
{{.FlowChart}}
<div class="wide"><table id="flows"><thead><tr><th>from \ to</th>{{range .Order}}<th>{{.}}</th>{{end}}</tr></thead><tbody>
{{range $i, $row := .Matrix}}<tr><td>{{index $.Froms $i}}</td>{{range $row}}<td{{if .Diagonal}} class="diag"{{end}}>{{if .Diagonal}}–{{else}}{{.Customers}}{{end}}</td>{{end}}</tr>
{{end}}</tbody></table></div>
<h2>Revenue per stage</h2>
<p class="note">{{if .SweptAt}}Customers in each stage at the latest sweep ({{.SweptAt}}), the sum of their total spent, and its average per customer.{{else}}No sweep yet.{{end}}</p>
<table class="cards" id="stages"><thead><tr><th>Stage</th><th>Customers</th><th>Revenue</th><th>Average value</th></tr></thead><tbody>
{{range .Stages}}<tr data-stage="{{.Stage}}"><td data-label="Stage">{{.Stage}}</td><td data-label="Customers">{{.Customers}}</td><td data-label="Revenue">{{money .Revenue}}</td><td data-label="Average value">{{money .Average}}</td></tr>
{{end}}{{with .Total}}<tr class="whole" data-stage="all"><td data-label="Stage">all</td><td data-label="Customers">{{.Customers}}</td><td data-label="Revenue">{{money .Revenue}}</td><td data-label="Average value">{{money .Average}}</td></tr>{{end}}
</tbody></table>
{{template "foot"}}{{end}}
`
