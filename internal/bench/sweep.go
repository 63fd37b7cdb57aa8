package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// changedPattern selects 1 % of the sample's customers (c0000100,
// c0000200, ...) for the third sweep of part f; changedOrders is what is
// added to their orders_count, enough to make a buyer of anyone.
const (
	changedPattern = "c%00"
	changedOrders  = 10
)

// sweepRun is one sweep of part f, as the child process reported it.
type sweepRun struct {
	label string
	childResult
}

// sweepStats is what part f measured, for the report and the tests.
type sweepStats struct {
	scan     time.Duration // bare scan of the rows a sweep reads
	baseline int64         // peak RSS of the child that only connects
	touched  int           // customers whose orders changed before the third sweep
	runs     []sweepRun
}

// sweeping is part f: the stage sweep of every customer, in a process of
// its own reporting its time and VmHWM, three times at --at: the first
// (every stage is a baseline), one with nothing changed, and one after
// the orders of 1 % of the customers changed. The baseline is a bare pgx
// scan of the rows a sweep reads, and for memory the child that only
// connects. The stage history and the orders are restored after.
func (b *bench) sweeping(ctx context.Context) error {
	if err := b.st.ClearStages(ctx); err != nil {
		return err
	}
	defer b.st.ClearStages(context.WithoutCancel(ctx))
	ss := &sweepStats{}
	b.progress("stage sweep: bare scan of %d customers", b.cfg.Customers)
	start := time.Now()
	if _, err := b.st.ScanSweep(ctx); err != nil {
		return err
	}
	ss.scan = time.Since(start)
	base, err := b.child(ctx, b.planDir(), "--baseline")
	if err != nil {
		return err
	}
	ss.baseline = base.PeakRSS
	sweep := func(label string) error {
		b.progress("stage sweep: %s", label)
		res, err := b.child(ctx, b.planDir(), "--sweep")
		if err != nil {
			return err
		}
		ss.runs = append(ss.runs, sweepRun{label: label, childResult: res})
		return nil
	}
	if err := sweep("first"); err != nil {
		return err
	}
	if err := sweep("nothing changed"); err != nil {
		return err
	}
	if ss.touched, err = b.st.ShiftOrders(ctx, changedPattern, changedOrders); err != nil {
		return err
	}
	err = sweep("1 % of customers changed")
	if _, rerr := b.st.ShiftOrders(context.WithoutCancel(ctx), changedPattern, -changedOrders); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	b.sweepStats = ss
	for _, r := range ss.runs {
		d := time.Duration(r.TickSeconds * float64(time.Second))
		what := ""
		if r.label == "1 % of customers changed" {
			what = fmt.Sprintf(" (orders of %s customers changed)", count(float64(ss.touched)))
		}
		sw := r.Sweep
		b.add(result{
			name: fmt.Sprintf("(f) Stage sweep of %s customers, %s%s (own process)", count(float64(b.cfg.Customers)), r.label, what),
			value: fmt.Sprintf("%s (%s customers/s); %s baselines, %s changes recorded; peak RSS %s (child that only connects: %s)",
				secs(d), count(rate(sw.Customers, d)), count(float64(sw.Baselines)), count(float64(sw.Changes)),
				megabytes(r.PeakRSS), megabytes(ss.baseline)),
			baseline: fmt.Sprintf("bare pgx scan of the same rows: %s", secs(ss.scan)),
			ratio:    d.Seconds() / ss.scan.Seconds(),
			target:   "< 300 MB",
			met:      met(r.PeakRSS < 300e6),
		})
	}
	return nil
}

func (b *bench) planDir() string { return filepath.Join(b.dir, "plan") }
