package store_test

import (
	"context"
	"testing"
	"time"

	"nurture/internal/store"
	"nurture/internal/testenv"
)

// batchDelivery plans one delivery and queues it on the batch task
// "batch:" + its id.
func batchDelivery(t *testing.T, st *store.Store) (id, task string) {
	t.Helper()
	refs, err := st.InsertDeliveries(context.Background(), []store.NewDelivery{newDelivery("w", "c1", ts("2026-06-01T09:00:00Z"))})
	if err != nil || len(refs) != 1 {
		t.Fatalf("insert: %v %v", refs, err)
	}
	id = refs[0].ID
	if err := st.MarkQueuedBy(context.Background(), []string{id}, []string{"batch:" + id}); err != nil {
		t.Fatal(err)
	}
	return id, "batch:" + id
}

func TestClaimOnlyByItsTask(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	id, task := batchDelivery(t, st)

	// Its own task may not claim it, nor another batch.
	for _, other := range []string{"", "batch:other"} {
		cl, err := st.ClaimBy(ctx, []string{id}, []string{other})
		if err != nil {
			t.Fatal(err)
		}
		if cl[0].Claimed || cl[0].Status != store.StatusQueued {
			t.Errorf("claim by %q: claimed %v, status %q; want unclaimed, queued", other, cl[0].Claimed, cl[0].Status)
		}
	}
	// Claimed for the batch and for its own task in one statement: only
	// the batch gets it.
	cl, err := st.ClaimBy(ctx, []string{id, id}, []string{task, ""})
	if err != nil {
		t.Fatal(err)
	}
	if !cl[0].Claimed || cl[1].Claimed {
		t.Fatalf("one statement claiming for the batch and the own task: batch %v, own %v; want the batch only", cl[0].Claimed, cl[1].Claimed)
	}
	// A retry detaches it from the batch: now only its own task may claim it.
	if _, err := st.Record(ctx, []store.Outcome{{ID: id, Status: store.StatusRetry, Error: "451", Attempt: 1}}); err != nil {
		t.Fatal(err)
	}
	if cl, _ := st.ClaimBy(ctx, []string{id}, []string{task}); cl[0].Claimed {
		t.Error("the batch claimed a delivery it handed on")
	}
	if cl, _ := st.Claim(ctx, []string{id}); !cl[0].Claimed || cl[0].Attempts != 2 {
		t.Errorf("own task after the hand-on: claimed %v, attempts %d; want claimed, 2", cl[0].Claimed, cl[0].Attempts)
	}
}

func TestDetachSparesWhatTheBatchClaimed(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	id, task := batchDelivery(t, st)
	listed, err := st.UnfinishedAfterLoss(ctx, 3*time.Minute, 100)
	if err != nil || len(listed) != 1 || listed[0].Task != task {
		t.Fatalf("listed %+v, %v; want the delivery on %s", listed, err, task)
	}
	// The batch, taken for gone, claims the delivery before the detach.
	if cl, _ := st.ClaimBy(ctx, []string{id}, []string{task}); !cl[0].Claimed {
		t.Fatal("the batch could not claim its delivery")
	}
	done, err := st.Detach(ctx, []string{id}, []string{task}, time.Minute)
	if err != nil || len(done) != 0 {
		t.Fatalf("detach of a delivery its batch is sending = %v, %v; want nothing detached", done, err)
	}
	if cl, _ := st.Claim(ctx, []string{id}); cl[0].Claimed {
		t.Fatal("its own task claimed a delivery its batch is sending")
	}
	// Left sending for longer than the idle time (its worker died), it is
	// detached; and a detach for a task the row does not name does nothing.
	if done, _ := st.Detach(ctx, []string{id}, []string{"batch:other"}, time.Nanosecond); len(done) != 0 {
		t.Errorf("detach for another batch detached %v", done)
	}
	done, err = st.Detach(ctx, []string{id}, []string{task}, time.Nanosecond)
	if err != nil || len(done) != 1 || done[0] != id {
		t.Fatalf("detach of an idle sending delivery = %v, %v; want %s", done, err, id)
	}
	if cl, _ := st.Claim(ctx, []string{id}); !cl[0].Claimed {
		t.Error("its own task could not claim the detached delivery")
	}
}
