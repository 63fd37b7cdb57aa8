package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"nurture/internal/store"
)

// deliveryStatuses are the statuses --status accepts.
var deliveryStatuses = []string{store.StatusPlanned, store.StatusQueued, store.StatusSending, store.StatusSent, store.StatusFailed, store.StatusSkipped, store.StatusHeldOut}

// deliveryLine is one line of `deliveries --json` (DESIGN.md, "CLI,
// extended").
type deliveryLine struct {
	ID         string `json:"id"`
	Campaign   string `json:"campaign"`
	CustomerID string `json:"customer_id"`
	Occurrence string `json:"occurrence"`
	Step       int    `json:"step"`
	Variant    string `json:"variant,omitempty"`
	SendAt     string `json:"send_at"`
	Status     string `json:"status"`
	Reason     string `json:"reason"`
	Attempts   int    `json:"attempts"`
	MessageID  string `json:"message_id"`
	EventID    string `json:"event_id,omitempty"`
}

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
		occ := d.Occurrence.UTC().Format(time.RFC3339)
		sendAt := d.SendAt.UTC().Format(time.RFC3339)
		if *asJSON {
			return enc.Encode(deliveryLine{ID: d.ID, Campaign: d.Campaign, CustomerID: d.CustomerID, Occurrence: occ, Step: d.Step,
				Variant: d.Variant, SendAt: sendAt, Status: d.Status, Reason: d.Reason, Attempts: d.Attempts, MessageID: d.MessageID,
				EventID: d.EventID})
		}
		_, err := fmt.Fprintf(w, "%-16s %-14s %-20s %-4d %-8s %-8d %s\n", d.Campaign, d.CustomerID, sendAt, d.Step, d.Status, d.Attempts, d.Reason)
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
