package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"time"

	"nurture/internal/planner"
)

// benchChildCommand is the hidden subcommand of bench that runs the tick of
// part d in a process of its own, whose peak RSS is then the tick's.
const benchChildCommand = "tick-child"

// childResult is what the child prints on stdout, as JSON.
type childResult struct {
	PeakRSS     int64   `json:"peak_rss_bytes"`
	Candidates  int     `json:"candidates"`
	Planned     int     `json:"planned"`
	Enqueued    int     `json:"enqueued"`
	TickSeconds float64 `json:"tick_seconds"`
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
	b.progress("peak RSS: process ticking %d campaigns over %d customers", len(b.plan.Rules.Targets()), b.cfg.customers)
	tick, err := b.runChild(ctx, false)
	if err != nil {
		return err
	}
	d := time.Duration(tick.TickSeconds * float64(time.Second))
	b.add(benchResult{
		name: fmt.Sprintf("(d) Peak RSS of a tick of %d campaigns over %s customers (own process, `VmHWM`)",
			len(b.plan.Rules.Targets()), count(float64(b.cfg.customers))),
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
	var res childResult
	exe, err := os.Executable()
	if err != nil {
		return res, err
	}
	args := []string{"bench", benchChildCommand,
		"--database-url", b.databaseURL, "--redis-url", b.redisURL,
		"--campaigns", filepath.Join(b.dir, "plan"), "--templates", b.tmplsDir,
		"--at", b.cfg.at.Format(time.RFC3339), "--log-level", b.logLevel}
	if baseline {
		args = append(args, "--baseline")
	} else if b.cfg.profile != "" {
		args = append(args, "--cpuprofile", filepath.Join(b.cfg.profile, "part-d-tick.pprof"))
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stderr = indent{b.stderr}
	out, err := cmd.Output()
	if err != nil {
		return res, fmt.Errorf("%s %s: %w", exe, benchChildCommand, err)
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return res, fmt.Errorf("%s %s printed %q: %w", exe, benchChildCommand, out, err)
	}
	return res, nil
}

// benchChild is the child process of part d: it connects, loads the
// campaigns and, unless --baseline, ticks every campaign; then it prints
// its peak RSS and what the tick did as JSON.
func (a *app) benchChild(ctx context.Context, args []string) error {
	fs := a.flags("bench "+benchChildCommand, "--at TIME [--baseline]")
	baseline := fs.Bool("baseline", false, "connect and load the campaigns, but do not tick")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the tick to this file")
	ta, err := a.tickFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	defer ta.store.Close()
	q, closeQueue, err := a.openQueue(ctx)
	if err != nil {
		return err
	}
	defer closeQueue()

	var res childResult
	if !*baseline {
		stop, err := startProfile(*cpuprofile)
		if err != nil {
			return err
		}
		start := time.Now()
		results, err := planner.New(ta.store, a.log).TickAll(ctx, ta.content.Rules, ta.targets, ta.at, q, indent{a.stderr})
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
	if res.PeakRSS, err = peakRSS(); err != nil {
		return err
	}
	return json.NewEncoder(a.stdout).Encode(res)
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
