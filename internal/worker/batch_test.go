package worker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestBatcherCloseReleasesEverySubmitter races submitters against close:
// each call must return, with its result or errBatcherClosed, never hang
// on a request that no flusher will serve.
func TestBatcherCloseReleasesEverySubmitter(t *testing.T) {
	for round := range 2000 {
		b := newBatcher(2, 4, 0, time.Minute, func(_ context.Context, in []int) ([]int, error) {
			return in, nil
		})
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				got, err := b.do(context.Background(), i)
				switch {
				case errors.Is(err, errBatcherClosed):
				case err != nil:
					t.Errorf("round %d: do(%d): %v", round, i, err)
				case got != i:
					t.Errorf("round %d: do(%d) = %d", round, i, got)
				}
			}()
		}
		close(start)
		b.close()
		done := make(chan struct{})
		go func() {
			wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: a submitter still waits 10s after close", round)
		}
	}
}
