package worker

import (
	"sync/atomic"
	"time"
)

// runner runs functions on goroutines it keeps. A batch task's deliveries
// each need a goroutine; a new one starts with a small stack that grows,
// by copying, to the depth of rendering and sending, every time, where a
// kept one has grown once. A goroutine that finds nothing to run for idle
// ends, so an idle worker holds none.
type runner struct {
	jobs chan func()
	idle time.Duration
	live atomic.Int32 // goroutines running or waiting
}

func newRunner(idle time.Duration) *runner {
	return &runner{jobs: make(chan func()), idle: idle}
}

// run runs f on a waiting goroutine of r, or on a new one: it never waits
// for a goroutine to come free.
func (r *runner) run(f func()) {
	select {
	case r.jobs <- f:
	default:
		r.live.Add(1)
		go r.loop(f)
	}
}

func (r *runner) loop(f func()) {
	defer r.live.Add(-1)
	t := time.NewTimer(r.idle)
	defer t.Stop()
	for {
		f()
		t.Reset(r.idle)
		select {
		case f = <-r.jobs:
		case <-t.C:
			return
		}
	}
}
