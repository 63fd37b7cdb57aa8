package worker

import (
	"context"

	"nurture/internal/store"
)

// GateRecords makes w's outcome statements wait until gate is closed
// before they reach PostgreSQL. Call it before w processes anything.
func GateRecords(w *Worker, gate <-chan struct{}) {
	record := w.records.fn
	w.records.fn = func(ctx context.Context, outs []store.Outcome) ([]bool, error) {
		<-gate
		return record(ctx, outs)
	}
}
