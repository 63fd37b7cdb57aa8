package pages

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
)

// Series is one named line (or band) of a chart, one value per x label.
type Series struct {
	Name   string
	Color  string
	Values []float64
}

// Chart geometry, in SVG user units; the SVG scales to its container.
const (
	chartW, chartH = 640.0, 260.0
	padL, padR     = 64.0, 12.0
	padT, padB     = 12.0, 56.0
)

// palette colours series in order.
var palette = []string{"#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563"}

func colorOf(i int) string { return palette[i%len(palette)] }

// niceMax rounds v up to 1, 2 or 5 times a power of ten, so the axis has
// round numbers; at least 1.
func niceMax(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// frame draws the axes, the y scale (0 to max) and at most about eight x
// labels.
func frame(b *strings.Builder, labels []string, max float64) {
	x0, y0, x1, y1 := padL, chartH-padB, chartW-padR, padT
	for i := 0; i <= 4; i++ {
		y := y0 - (y0-y1)*float64(i)/4
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e7eb"/>`, x0, y, x1, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="end" fill="#374151">%s</text>`, x0-4, y+4, number(max*float64(i)/4))
	}
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#9ca3af"/>`, x0, y0, x1, y0)
	every := 1 + (len(labels)-1)/8
	for i, l := range labels {
		if i%every != 0 {
			continue
		}
		x := xAt(i, len(labels))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="end" fill="#374151" transform="rotate(-40 %.1f %.1f)">%s</text>`,
			x, y0+14, x, y0+14, html.EscapeString(l))
	}
}

func number(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func xAt(i, n int) float64 {
	if n <= 1 {
		return (padL + chartW - padR) / 2
	}
	return padL + (chartW-padL-padR)*float64(i)/float64(n-1)
}

func yAt(v, max float64) float64 {
	return chartH - padB - (chartH-padB-padT)*v/max
}

// open starts an SVG with an accessible title.
func open(b *strings.Builder, title string) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s" class="chart"><title>%s</title>`,
		chartW, chartH, html.EscapeString(title), html.EscapeString(title))
}

// legend lists the series' names and colours under the chart, as HTML.
func legend(series []Series) string {
	var b strings.Builder
	b.WriteString(`<p class="legend">`)
	for _, s := range series {
		fmt.Fprintf(&b, `<span><i style="background:%s"></i>%s</span> `, s.Color, html.EscapeString(s.Name))
	}
	b.WriteString(`</p>`)
	return b.String()
}

// LineChart draws each series as a line over the x labels, with a dot at
// each value.
func LineChart(title string, labels []string, series []Series) template.HTML {
	max := 0.0
	for _, s := range series {
		for _, v := range s.Values {
			max = math.Max(max, v)
		}
	}
	max = niceMax(max)
	var b strings.Builder
	open(&b, title)
	frame(&b, labels, max)
	for _, s := range series {
		pts := make([]string, len(s.Values))
		for i, v := range s.Values {
			pts[i] = fmt.Sprintf("%.1f,%.1f", xAt(i, len(s.Values)), yAt(v, max))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, s.Color, strings.Join(pts, " "))
		for i, v := range s.Values {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"><title>%s %s: %s</title></circle>`,
				xAt(i, len(s.Values)), yAt(v, max), s.Color, html.EscapeString(s.Name), html.EscapeString(labels[i]), number(v))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String() + legend(series))
}

// StackedArea draws the series stacked, first at the bottom, as bands.
func StackedArea(title string, labels []string, series []Series) template.HTML {
	n := len(labels)
	top := make([]float64, n)
	for _, s := range series {
		for i, v := range s.Values {
			top[i] += v
		}
	}
	max := 0.0
	for _, v := range top {
		max = math.Max(max, v)
	}
	max = niceMax(max)
	var b strings.Builder
	open(&b, title)
	frame(&b, labels, max)
	base := make([]float64, n)
	for _, s := range series {
		var up, down []string
		for i := 0; i < n; i++ {
			up = append(up, fmt.Sprintf("%.1f,%.1f", xAt(i, n), yAt(base[i]+s.Values[i], max)))
		}
		for i := n - 1; i >= 0; i-- {
			down = append(down, fmt.Sprintf("%.1f,%.1f", xAt(i, n), yAt(base[i], max)))
		}
		if n == 1 { // one day: a bar rather than a line of no width
			x := xAt(0, 1)
			up = []string{fmt.Sprintf("%.1f,%.1f", x-20, yAt(base[0]+s.Values[0], max)), fmt.Sprintf("%.1f,%.1f", x+20, yAt(base[0]+s.Values[0], max))}
			down = []string{fmt.Sprintf("%.1f,%.1f", x+20, yAt(base[0], max)), fmt.Sprintf("%.1f,%.1f", x-20, yAt(base[0], max))}
		}
		fmt.Fprintf(&b, `<polygon fill="%s" fill-opacity="0.75" stroke="%s" points="%s %s"><title>%s</title></polygon>`,
			s.Color, s.Color, strings.Join(up, " "), strings.Join(down, " "), html.EscapeString(s.Name))
		for i := range base {
			base[i] += s.Values[i]
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String() + legend(series))
}

// Bar is one labelled value of a bar chart.
type Bar struct {
	Label string
	Value float64
	Color string
}

// BarChart draws horizontal bars, one per row, with label and value.
func BarChart(title string, bars []Bar) template.HTML {
	const rowH, labelW = 26.0, 190.0
	h := padT*2 + rowH*float64(max(len(bars), 1))
	top := 0.0
	for _, b := range bars {
		top = math.Max(top, b.Value)
	}
	if top == 0 {
		top = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s" class="chart"><title>%s</title>`,
		chartW, h, html.EscapeString(title), html.EscapeString(title))
	for i, bar := range bars {
		y := padT + rowH*float64(i)
		w := (chartW - labelW - 70) * bar.Value / top
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="12" text-anchor="end" fill="#111827">%s</text>`, labelW-6, y+rowH/2+4, html.EscapeString(bar.Label))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, labelW, y+4, w, rowH-8, bar.Color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="12" fill="#111827">%s</text>`, labelW+w+6, y+rowH/2+4, number(bar.Value))
	}
	if len(bars) == 0 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="12" fill="#6b7280">none</text>`, padL, padT+rowH/2)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
