package main

import (
	"context"
	"errors"
	"fmt"

	"nurture/internal/store"
)

// forget erases each person named by id (store.Erase). An id of which
// nothing is stored is reported and the others are still erased; the
// command then exits 1.
func (a *app) forget(ctx context.Context, args []string) error {
	fs := a.flags("forget")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitError{code: 2}
	}
	st, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	unknown := 0
	for _, id := range fs.Args() {
		res, err := st.Erase(ctx, id, store.ErasedByCLI)
		switch {
		case errors.Is(err, store.ErrNotFound):
			fmt.Fprintf(a.stderr, "nurture forget: no customer with id %q (nothing stored under it, or erased already)\n", id)
			unknown++
			continue
		case err != nil && res.Sending == 0:
			return err
		case err != nil:
			fmt.Fprintf(a.stderr, "nurture forget: customer %q erased, but waiting for emails being sent to them failed: %v\n", id, err)
		}
		fmt.Fprintf(a.stdout, "erased customer %q: address suppressed by its hash; %d deliveries (%d unsent, now skipped), %d events, %d journeys kept without them\n",
			id, res.Deliveries, res.Cancelled, res.Events, res.Journeys)
		if res.StillSending > 0 {
			fmt.Fprintf(a.stderr, "nurture forget: %d email(s) to customer %q were still being sent when the wait ended; they may go out\n",
				res.StillSending, id)
		}
	}
	if unknown > 0 {
		return exitError{code: 1, msg: fmt.Sprintf("nurture forget: %d of %d id(s) unknown", unknown, fs.NArg())}
	}
	return nil
}
