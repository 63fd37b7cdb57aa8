package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"nurture/internal/report"
	"nurture/internal/store"
)

func (a *app) report(ctx context.Context, args []string) error {
	fs := a.flags("report")
	campaignFlag := fs.String("campaign", "", "only this campaign")
	since := fs.String("since", "", "only deliveries whose send time is at or after this RFC 3339 time")
	until := fs.String("until", "", "only deliveries whose send time is before this RFC 3339 time")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return exitError{code: 2}
	}
	filter := store.ReportFilter{Campaign: *campaignFlag}
	for _, f := range []struct {
		name, value string
		to          *time.Time
	}{{"since", *since, &filter.Since}, {"until", *until, &filter.Until}} {
		if f.value == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, f.value)
		if err != nil {
			return exitError{code: 2, msg: fmt.Sprintf("nurture report: --%s %q is not an RFC 3339 time such as 2026-11-24T09:00:00Z", f.name, f.value)}
		}
		*f.to = t.UTC()
	}
	if !filter.Since.IsZero() && !filter.Until.IsZero() && !filter.Since.Before(filter.Until) {
		return exitError{code: 2, msg: "nurture report: --since must be before --until"}
	}
	c, st, err := a.contentAndStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	set := c.Campaigns()
	// Purchases imported since the scheduler last looked count at once.
	if _, err := st.Attribute(ctx, report.Windows(set)); err != nil {
		return err
	}
	rows, err := st.Report(ctx, filter)
	if err != nil {
		return err
	}
	known := report.Campaigns(set)
	if filter.Campaign != "" {
		known = slices.DeleteFunc(known, func(k report.Campaign) bool { return k.Name != filter.Campaign })
		if len(known) == 0 && len(rows) == 0 {
			return fmt.Errorf("report: no campaign %q, and no deliveries of one", filter.Campaign)
		}
	}
	lines := report.Build(rows, known)
	w := bufio.NewWriter(a.stdout)
	defer w.Flush()
	if *asJSON {
		enc := json.NewEncoder(w)
		for _, l := range lines {
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
		return nil
	}
	report.WriteText(w, lines)
	return nil
}
