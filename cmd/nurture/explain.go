package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"nurture/internal/planner"
	"nurture/internal/store"
)

func (a *app) explain(ctx context.Context, args []string) error {
	fs := a.flags("explain")
	atFlag := fs.String("at", "", "explain the evaluation at this RFC 3339 time (or now)")
	asJSON := fs.Bool("json", false, "one JSON object")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError{code: 2}
	}
	id := fs.Arg(0)
	at, err := parseAt(*atFlag)
	if err != nil {
		return err
	}
	c, st, err := a.contentAndStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	ex, err := planner.New(st, a.log).Explain(ctx, c.Rules, id, at)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("explain: no customer with id %q", id)
	}
	if err != nil {
		return err
	}
	w := bufio.NewWriter(a.stdout)
	defer w.Flush()
	if *asJSON {
		return json.NewEncoder(w).Encode(ex)
	}
	f := ex.Facts
	fmt.Fprintf(w, "customer %s <%s> at %s\n", ex.CustomerID, f["email"], ex.At.Format(time.RFC3339))
	fmt.Fprintf(w, "  stage %s, inactive %d days, %d order(s), %.2f spent, subscribed %v, suppressed %v\n\n",
		ex.Stage, f["inactive_days"], f["orders_count"], f["total_spent"], f["subscribed"], f["suppressed"])
	fmt.Fprintf(w, "%-18s %-8s %s\n", "CAMPAIGN", "PLANNED", "WHY")
	for _, v := range ex.Campaigns {
		why := v.Detail
		if v.Rule != "" {
			why = v.Rule + ": " + v.Detail
		} else if v.SendAt != nil {
			why = fmt.Sprintf("%s step %d, template %s, send at %s", v.Status, v.Step, v.Template, v.SendAt.Format(time.RFC3339))
			if v.Variant != "" {
				why += ", variant " + v.Variant
			}
		}
		fmt.Fprintf(w, "%-18s %-8v %s\n", v.Campaign, yesNo(v.Planned), why)
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
