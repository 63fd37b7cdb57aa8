package importer

import (
	"context"
	"fmt"
	"time"

	"nurture/internal/store"
)

// ItemProblem is one thing wrong with one item of a batch: Index is the
// item's 0-based position, Field the field it is about ("" for the item
// as a whole).
type ItemProblem struct {
	Index   int    `json:"index"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// BatchResult says what a batch did. Accepted counts items that created or
// changed a row; Duplicates counts valid items that changed nothing (an
// event whose id, or whose every field, was imported before; a customer
// identical to the stored one). Problems lists invalid items.
type BatchResult struct {
	Accepted   int
	Duplicates int
	Problems   []ItemProblem
}

// BatchOptions tune a batch.
type BatchOptions struct {
	// Partial writes the valid items when some are invalid; without it a
	// batch with any invalid item writes nothing.
	Partial bool
	// Now is the clock event times are checked against (default time.Now).
	Now func() time.Time
}

// CustomerBatch validates items, each one JSON value, exactly as
// Customers validates lines, and upserts the valid customers in one
// transaction.
func CustomerBatch(ctx context.Context, st *store.Store, items [][]byte, opts BatchOptions) (BatchResult, error) {
	return batch(ctx, items, opts, newCustomerParser().parse, alone(st, (*store.Import).Customers))
}

// EventBatch validates items exactly as Events validates lines and
// inserts the valid events in one transaction, updating facts as an
// import does; events imported before are duplicates.
func EventBatch(ctx context.Context, st *store.Store, items [][]byte, opts BatchOptions) (BatchResult, error) {
	return batch(ctx, items, opts, eventParserAt(opts).parse, alone(st, (*store.Import).Events))
}

// eventParserAt is the event parser for the clock of opts.
func eventParserAt(opts BatchOptions) eventParser {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	return eventParser{latest: now().Add(MaxFuture)}
}

// alone writes records in an import transaction of their own.
func alone[T any](st *store.Store, write func(*store.Import, context.Context, []T) (int, error)) func(context.Context, []T) (int, error) {
	return func(ctx context.Context, recs []T) (int, error) {
		im, err := st.BeginImport(ctx)
		if err != nil {
			return 0, err
		}
		defer im.Rollback(context.WithoutCancel(ctx))
		n, err := write(im, ctx, recs)
		if err != nil {
			return 0, err
		}
		return n, im.Commit(ctx)
	}
}

// batch validates items with parse and writes the valid records with
// write, unless some are invalid and opts is not partial.
func batch[T any](ctx context.Context, items [][]byte, opts BatchOptions,
	parse func(line []byte) (T, []reason),
	write func(context.Context, []T) (int, error),
) (BatchResult, error) {
	var res BatchResult
	recs := make([]T, 0, len(items))
	for i, item := range items {
		var reasons []reason
		var rec T
		if len(item) > MaxLineBytes {
			reasons = []reason{{"", fmt.Sprintf("item longer than %d bytes", MaxLineBytes)}}
		} else {
			rec, reasons = parse(item)
		}
		for _, r := range reasons {
			res.Problems = append(res.Problems, ItemProblem{Index: i, Field: r.field, Message: r.message()})
		}
		if len(reasons) == 0 {
			recs = append(recs, rec)
		}
	}
	if len(recs) == 0 || (len(res.Problems) > 0 && !opts.Partial) {
		return res, nil
	}
	n, err := write(ctx, recs)
	if err != nil {
		return res, err
	}
	res.Accepted, res.Duplicates = n, len(recs)-n
	return res, nil
}
