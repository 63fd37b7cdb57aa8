package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"nurture/internal/planner"
	"nurture/internal/store"
)

// deliveryStatuses are the statuses --status accepts.
var deliveryStatuses = []string{store.StatusPlanned, store.StatusQueued, store.StatusSending, store.StatusSent, store.StatusFailed, store.StatusSkipped, store.StatusHeldOut}

func (a *app) deliveries(ctx context.Context, args []string) error {
	fs := a.flags("deliveries")
	campaign := fs.String("campaign", "", "only this campaign's deliveries")
	customer := fs.String("customer", "", "only this customer's deliveries")
	status := fs.String("status", "", "only deliveries in this status: planned, queued, sending, sent, failed, skipped or held_out")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return exitError{code: 2}
	}
	if *status != "" && !slices.Contains(deliveryStatuses, *status) {
		return exitError{code: 2, msg: fmt.Sprintf("nurture deliveries: --status %q: want one of planned, queued, sending, sent, failed, skipped, held_out", *status)}
	}
	st, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	w := bufio.NewWriter(a.stdout)
	defer w.Flush()
	enc := json.NewEncoder(w)
	if !*asJSON {
		fmt.Fprintf(w, "%-16s %-14s %-20s %-4s %-8s %-8s %s\n", "CAMPAIGN", "CUSTOMER", "SEND_AT", "STEP", "STATUS", "ATTEMPTS", "REASON")
	}
	n := 0
	err = st.DeliveriesWhere(ctx, store.DeliveryFilter{Campaign: *campaign, CustomerID: *customer, Status: *status}, func(d *store.DeliveryRow) error {
		n++
		v := planner.ViewDelivery(d)
		if *asJSON {
			return enc.Encode(v)
		}
		_, err := fmt.Fprintf(w, "%-16s %-14s %-20s %-4d %-8s %-8d %s\n", d.Campaign, d.CustomerID, v.SendAt, d.Step, d.Status, d.Attempts, d.Reason)
		return err
	})
	if err != nil {
		return err
	}
	if !*asJSON && n == 0 {
		fmt.Fprintln(w, "(no deliveries)")
	}
	return nil
}
