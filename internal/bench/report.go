package bench

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// result is one row of the results table.
type result struct {
	name     string // what was measured
	value    string
	baseline string
	// ratio is the measured cost over the baseline's: time over time, or
	// memory over memory. 0 when there is no baseline.
	ratio  float64
	target string
	met    string // "yes", "no", or "" without a target
}

// add appends a result row.
func (b *bench) add(r result) { b.results = append(b.results, r) }

// detail appends a Markdown section printed after the table.
func (b *bench) detail(format string, args ...any) {
	b.details = append(b.details, fmt.Sprintf(format, args...))
}

// report prints the run as Markdown, ready to paste into BENCHMARKS.md.
func (b *bench) report(w io.Writer) {
	c := b.cfg
	fmt.Fprintf(w, "### Run of %s\n\n", b.machine.date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- Machine: %s\n", b.machine)
	fmt.Fprintf(w, "- Sizes: %s customers (seed %d), %d planning campaigns, %s tasks, %s sends, %d workers, %d SMTP connections\n",
		count(float64(c.Customers)), c.Seed, len(b.plan.Rules.Targets()), count(float64(c.Tasks)), count(float64(c.Sends)), c.Workers, c.SMTPConns)
	fmt.Fprintf(w, "- Command: `%s`\n\n", b.command())

	fmt.Fprintln(w, "| Benchmark | Result | Baseline | Cost vs baseline | Target | Met |")
	fmt.Fprintln(w, "|---|---|---|--:|---|---|")
	for _, r := range b.results {
		ratio := ""
		if r.ratio > 0 {
			ratio = fmt.Sprintf("%.2f×", r.ratio)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", r.name, r.value, r.baseline, ratio, r.target, r.met)
	}
	for _, d := range b.details {
		fmt.Fprintf(w, "\n%s", d)
	}
}

// command is the command line that repeats this run: part c's worker
// inherits Go's runtime settings from the environment, so those that were
// set come first.
func (b *bench) command() string {
	var words []string
	if b.parts["c"] {
		words = runtimeEnv(os.Environ())
	}
	return strings.Join(append(words, "nurture bench", b.flagsString()), " ")
}

// flagsString is the command line that repeats this run's sizes.
func (b *bench) flagsString() string {
	c := b.cfg
	var parts []string
	for p := range strings.SplitSeq(AllParts, ",") {
		if b.parts[p] {
			parts = append(parts, p)
		}
	}
	return fmt.Sprintf("--only %s --customers %d --seed %d --tasks %d --sends %d --workers %d --smtp-conns %d --rounds %d --events %d --event-file %d --trigger-rate %d --trigger-time %s --trigger-poll %s",
		strings.Join(parts, ","), c.Customers, c.Seed, c.Tasks, c.Sends, c.Workers, c.SMTPConns, c.Rounds,
		c.Events, c.EventFile, c.TriggerRate, c.TriggerTime, c.TriggerPoll)
}

// met says whether a target holds.
func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// rate is n per second over d.
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// count formats n rounded to an integer, with thousands separators.
func count(n float64) string {
	s := strconv.FormatInt(int64(n+0.5), 10)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// secs formats a duration in seconds.
func secs(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// megabytes formats bytes in MB (10^6 bytes).
func megabytes(n int64) string { return fmt.Sprintf("%.0f MB", float64(n)/1e6) }
