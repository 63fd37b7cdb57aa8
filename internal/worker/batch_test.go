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

// A request that finds the batcher idle is flushed at once, however long
// the linger; requests that find others waiting share one call.
func TestBatcherLingersOnlyUnderLoad(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var calls [][]int
	b := newBatcher(1, 100, time.Hour, time.Minute, func(_ context.Context, in []int) ([]int, error) {
		mu.Lock()
		calls = append(calls, append([]int(nil), in...))
		mu.Unlock()
		if in[0] == 0 {
			<-release // hold the only flusher while the others queue up
		}
		return in, nil
	})
	defer b.close()
	first := make(chan int, 1)
	go func() {
		got, _ := b.do(context.Background(), 0)
		first <- got
	}()
	// Wait until the flusher holds request 0, without a linger of an hour.
	giveUp := time.After(30 * time.Second)
	for {
		mu.Lock()
		n := len(calls)
		mu.Unlock()
		if n == 1 {
			break
		}
		select {
		case <-first:
			t.Fatal("request 0 returned before it was released")
		case <-giveUp:
			t.Fatal("request 0, alone, not flushed after 30s: it waits for the linger")
		case <-time.After(time.Millisecond):
		}
	}
	// 100 requests queue behind it: the next flush takes them together and
	// then, busy, lingers for more, up to max, which they reach at once.
	var wg sync.WaitGroup
	for i := 1; i <= 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, err := b.do(context.Background(), i); err != nil || got != i {
				t.Errorf("do(%d) = %d, %v", i, got, err)
			}
		}()
	}
	for len(b.reqs) < 100 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if got := <-first; got != 0 {
		t.Errorf("do(0) = %d", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 2 || len(calls[0]) != 1 || len(calls[1]) != 100 {
		sizes := make([]int, len(calls))
		for i, c := range calls {
			sizes[i] = len(c)
		}
		t.Fatalf("calls of sizes %v, want [1 100]", sizes)
	}
}

// While one flusher holds a batch, the other lingers: it gathers the
// requests that come until the batch is full.
func TestBatcherLingersWhileAnotherFlushes(t *testing.T) {
	release := make(chan struct{})
	sizes := make(chan int, 10)
	b := newBatcher(2, 3, time.Hour, time.Minute, func(_ context.Context, in []int) ([]int, error) {
		sizes <- len(in)
		if in[0] == 0 {
			<-release
		}
		return in, nil
	})
	defer b.close()
	var wg sync.WaitGroup
	do := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, err := b.do(context.Background(), i); err != nil || got != i {
				t.Errorf("do(%d) = %d, %v", i, got, err)
			}
		}()
	}
	do(0)
	if n := <-sizes; n != 1 {
		t.Fatalf("first flush of %d, want request 0 alone", n)
	}
	for i := 1; i <= 3; i++ {
		do(i)
	}
	select {
	case n := <-sizes:
		if n != 3 {
			t.Errorf("second flush of %d, want the 3 that came while the first was held", n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no second flush after 30s")
	}
	close(release)
	wg.Wait()
}
