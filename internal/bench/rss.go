package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"time"

	"nurture/internal/audience"
	"nurture/internal/planner"
)

// ChildCommand is the hidden subcommand of `nurture bench` that runs the
// tick of part d in a process of its own, whose peak RSS is then the
// tick's: `nurture bench tick-child --database-url URL --redis-url URL
// --campaigns DIR --templates DIR --at TIME --log-level LEVEL [--baseline]
// [--cpuprofile FILE]`. The command parses those flags, connects, and
// calls RunChild.
const ChildCommand = "tick-child"

// childResult is what the child prints on stdout, as JSON.
type childResult struct {
	PeakRSS     int64   `json:"peak_rss_bytes"`
	Candidates  int     `json:"candidates"`
	Planned     int     `json:"planned"`
	Enqueued    int     `json:"enqueued"`
	TickSeconds float64 `json:"tick_seconds"`
	// Sweep is what a stage sweep (--sweep) recorded.
	Sweep *sweepCounts `json:"sweep,omitempty"`
}

// sweepCounts is what the child's stage sweep saw and recorded.
type sweepCounts struct {
	Customers int `json:"customers"`
	Baselines int `json:"baselines"`
	Changes   int `json:"changes"`
	Entries   int `json:"entries"`
	Failed    int `json:"failed"`
}

// peakRSS is part d: the peak RSS of a process that ticks every planning
// campaign over the whole audience (writing deliveries and enqueueing to
// the scratch Redis DB), against that of the same process doing everything
// but the tick.
func (b *bench) peakRSS(ctx context.Context) error {
	if err := b.st.ClearDeliveries(ctx); err != nil {
		return err
	}
	if err := b.flushRedis(ctx); err != nil {
		return err
	}
	defer b.flushRedis(context.WithoutCancel(ctx))
	b.progress("peak RSS: baseline process (connect, load campaigns, no tick)")
	base, err := b.runChild(ctx, true)
	if err != nil {
		return err
	}
	b.progress("peak RSS: process ticking %d campaigns over %d customers", len(b.plan.Rules.Targets()), b.cfg.Customers)
	tick, err := b.runChild(ctx, false)
	if err != nil {
		return err
	}
	d := time.Duration(tick.TickSeconds * float64(time.Second))
	b.add(result{
		name: fmt.Sprintf("(d) Peak RSS of a tick of %d campaigns over %s customers (own process, `VmHWM`)",
			len(b.plan.Rules.Targets()), count(float64(b.cfg.Customers))),
		value: fmt.Sprintf("%s (%s deliveries planned and %s enqueued in %s, %s/s)", megabytes(tick.PeakRSS),
			count(float64(tick.Planned)), count(float64(tick.Enqueued)), secs(d), count(rate(tick.Planned, d))),
		baseline: "same process without the tick: " + megabytes(base.PeakRSS),
		ratio:    float64(tick.PeakRSS) / float64(base.PeakRSS),
		target:   "< 300 MB",
		met:      met(tick.PeakRSS < 300e6),
	})
	return nil
}

// runChild runs the tick child, or its baseline, and returns its report.
func (b *bench) runChild(ctx context.Context, baseline bool) (childResult, error) {
	var extra []string
	if baseline {
		extra = append(extra, "--baseline")
	} else if b.cfg.Profile != "" {
		extra = append(extra, "--cpuprofile", filepath.Join(b.cfg.Profile, "part-d-tick.pprof"))
	}
	return b.child(ctx, filepath.Join(b.dir, "plan"), extra...)
}

// child runs the child process over the campaigns of dir, with extra
// flags, and returns its report.
func (b *bench) child(ctx context.Context, dir string, extra ...string) (childResult, error) {
	var res childResult
	exe := b.cfg.Executable
	args := []string{"bench", ChildCommand,
		"--database-url", b.cfg.DatabaseURL, "--redis-url", b.cfg.RedisURL,
		"--campaigns", dir, "--templates", b.cfg.TemplatesDir,
		"--at", b.cfg.At.Format(time.RFC3339), "--log-level", b.cfg.LogLevel}
	args = append(args, extra...)
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stderr = indent{b.stderr}
	out, err := cmd.Output()
	if err != nil {
		return res, fmt.Errorf("%s %s: %w", exe, ChildCommand, err)
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return res, fmt.Errorf("%s %s printed %q: %w", exe, ChildCommand, out, err)
	}
	return res, nil
}

// ChildConfig is what the child process of part d ticks.
type ChildConfig struct {
	// Planner ticks the campaigns. Required.
	Planner *planner.Planner
	// Rules and Targets are the campaigns, as loaded from --campaigns.
	// Required.
	Rules   *audience.Rules
	Targets []*audience.Target
	// At is the instant of the tick (--at). Required.
	At time.Time
	// Queue receives the tasks. Required.
	Queue planner.Enqueuer
	// Baseline skips the tick: the process only connects and loads the
	// campaigns (--baseline). Default false.
	Baseline bool
	// Sweep runs the stage sweep at At instead of the tick (--sweep), for
	// part f. Default false.
	Sweep bool
	// CPUProfile is a file for a CPU profile of the tick (--cpuprofile).
	// Default "": no profile.
	CPUProfile string
}

// RunChild is the child process of parts d and f: unless cfg.Baseline, it
// ticks every campaign, writing a line per campaign to stderr, or with
// cfg.Sweep records the stage sweep; then it prints its peak RSS and what
// it did as JSON on stdout, for the parent.
func RunChild(ctx context.Context, cfg ChildConfig, stdout, stderr io.Writer) error {
	var res childResult
	switch {
	case cfg.Baseline:
	case cfg.Sweep:
		start := time.Now()
		sw, err := cfg.Planner.Sweep(ctx, cfg.Rules, cfg.At)
		res.TickSeconds = time.Since(start).Seconds()
		if err != nil {
			return err
		}
		if sw.Refused {
			return fmt.Errorf("stage sweep at %s refused: history runs to %s", cfg.At.Format(time.RFC3339), sw.Latest.Format(time.RFC3339))
		}
		res.Sweep = &sweepCounts{Customers: sw.Customers, Baselines: sw.Baselines, Changes: sw.Changes, Entries: sw.Entries, Failed: sw.Failed}
	default:
		stop, err := startProfile(cfg.CPUProfile)
		if err != nil {
			return err
		}
		start := time.Now()
		results, err := cfg.Planner.TickAll(ctx, cfg.Rules, cfg.Targets, cfg.At, cfg.Queue, indent{stderr})
		res.TickSeconds = time.Since(start).Seconds()
		stop()
		if err != nil {
			return err
		}
		for _, r := range results {
			res.Candidates += r.Candidates
			res.Planned += r.Planned
			res.Enqueued += r.Enqueued
		}
	}
	var err error
	if res.PeakRSS, err = peakRSS(); err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(res)
}

// startProfile starts the CPU profiler writing to file, when file is not
// empty, and returns the function that stops it.
func startProfile(file string) (stop func(), err error) {
	if file == "" {
		return func() {}, nil
	}
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
