package worker

import (
	"sync"
	"testing"
	"time"
)

// TestRunner: run never waits for a goroutine to come free (every
// function of a round runs at once), a later round runs on the goroutines
// the first one left waiting, and they end once idle.
func TestRunner(t *testing.T) {
	r := newRunner(50 * time.Millisecond)
	const n = 8
	round := func() {
		var started, done sync.WaitGroup
		started.Add(n)
		done.Add(n)
		release := make(chan struct{})
		for range n {
			r.run(func() {
				defer done.Done()
				started.Done()
				<-release // held until all n have started: they run at once
			})
		}
		started.Wait()
		close(release)
		done.Wait()
	}
	round()
	if got := r.live.Load(); got != n {
		t.Errorf("%d goroutines after the first round, want %d", got, n)
	}
	round()
	if got := r.live.Load(); got > 2*n {
		t.Errorf("%d goroutines after the second round, want at most %d", got, 2*n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.live.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := r.live.Load(); got != 0 {
		t.Errorf("%d goroutines left after they were idle, want none", got)
	}
}
