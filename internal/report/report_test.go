package report_test

import (
	"encoding/json"
	"strings"
	"testing"

	"nurture/internal/report"
	"nurture/internal/store"
)

// TestBuild checks the report against figures computed by hand: 80
// deliveries of variant a and 10 unsent, 80 held out, in two steps; and
// the uplift interval of Newcombe (1998), example (a) of table II:
// 56/70 − 48/80 = 0.2, 95 % interval 0.0524 to 0.3339 (method 10).
func TestBuild(t *testing.T) {
	rows := []store.ReportRow{
		{Campaign: "winback", Variant: "a", Step: 1, Status: "sent", Deliveries: 70, Converted: 56, EntriesConverted: 56, Revenue: 1000.5, Unsubscribed: 2, Bounced: 3, Complained: 1},
		{Campaign: "winback", Variant: "a", Step: 1, Status: "failed", Deliveries: 3},
		{Campaign: "winback", Variant: "a", Step: 1, Status: "skipped", Reason: "unsubscribed", Deliveries: 4},
		{Campaign: "winback", Variant: "a", Step: 1, Status: "skipped", Reason: "frequency cap", Deliveries: 1},
		{Campaign: "winback", Variant: "a", Step: 1, Status: "queued", Deliveries: 2},
		{Campaign: "winback", Variant: "holdout", Step: 1, Status: "held_out", Deliveries: 80, Converted: 48, Revenue: 500},
		{Campaign: "old", Variant: "", Step: 1, Status: "sent", Deliveries: 1},
	}
	lines := report.Build(rows, []report.Campaign{{Name: "winback", Holdout: true}, {Name: "welcome", Journey: true}})
	var got []string
	for _, l := range lines {
		b, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(b))
	}
	want := []string{
		`{"campaign":"old","variant":null,"step":null,"planned":1,"sent":1,"failed":0,"skipped":{},"held_out":0,"unfinished":0,"opened":0,"clicked":0,"unsubscribed":0,"bounced":0,"complained":0,"converted":0,"revenue":0,"conversion_rate":0,"holdout_converted":0,"holdout_conversion_rate":0,"uplift":null}`,
		`{"campaign":"welcome","variant":null,"step":null,"planned":0,"sent":0,"failed":0,"skipped":{},"held_out":0,"unfinished":0,"opened":0,"clicked":0,"unsubscribed":0,"bounced":0,"complained":0,"converted":0,"revenue":0,"conversion_rate":0,"holdout_converted":0,"holdout_conversion_rate":0,"uplift":null}`,
		`{"campaign":"winback","variant":null,"step":null,"planned":160,"sent":70,"failed":3,"skipped":{"frequency cap":1,"unsubscribed":4},"held_out":80,"unfinished":2,"opened":0,"clicked":0,"unsubscribed":2,"bounced":3,"complained":1,"converted":56,"revenue":1000.5,"conversion_rate":0.8,"holdout_converted":48,"holdout_conversion_rate":0.6,"uplift":{"value":0.2,"low":0.052431,"high":0.333873}}`,
		`{"campaign":"winback","variant":"a","step":null,"planned":80,"sent":70,"failed":3,"skipped":{"frequency cap":1,"unsubscribed":4},"held_out":0,"unfinished":2,"opened":0,"clicked":0,"unsubscribed":2,"bounced":3,"complained":1,"converted":56,"revenue":1000.5,"conversion_rate":0.8,"holdout_converted":0,"holdout_conversion_rate":0,"uplift":null}`,
		`{"campaign":"winback","variant":"holdout","step":null,"planned":80,"sent":0,"failed":0,"skipped":{},"held_out":80,"unfinished":0,"opened":0,"clicked":0,"unsubscribed":0,"bounced":0,"complained":0,"converted":0,"revenue":0,"conversion_rate":0,"holdout_converted":48,"holdout_conversion_rate":0.6,"uplift":null}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("report:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Every line reconciles: sent + failed + skipped + held out +
	// unfinished = planned.
	for _, l := range lines {
		sum := l.Sent + l.Failed + l.HeldOut + l.Unfinished
		for _, n := range l.Skipped {
			sum += n
		}
		if sum != l.Planned {
			t.Errorf("%s %v: parts add up to %d, planned %d", l.Campaign, l.Variant, sum, l.Planned)
		}
	}
}

// TestBuildSteps: a journey gets a line per step, and a holdout line even
// before anyone was held out.
func TestBuildSteps(t *testing.T) {
	rows := []store.ReportRow{
		{Campaign: "welcome", Step: 1, Status: "sent", Deliveries: 10, Converted: 1, Revenue: 5},
		{Campaign: "welcome", Step: 2, Status: "sent", Deliveries: 8},
		{Campaign: "welcome", Step: 2, Status: "skipped", Reason: "where", Deliveries: 2},
	}
	lines := report.Build(rows, []report.Campaign{{Name: "welcome", Journey: true, Holdout: true}})
	var got []string
	for _, l := range lines {
		v, s := "-", "-"
		if l.Variant != nil {
			v = *l.Variant
		}
		if l.Step != nil {
			s = string(rune('0' + *l.Step))
		}
		got = append(got, v+"/"+s)
		if l.Variant == nil && l.Step == nil && (l.Planned != 20 || l.Uplift != nil) {
			t.Errorf("whole line: %+v (no held-out entry yet: no uplift)", l)
		}
	}
	if strings.Join(got, " ") != "-/- holdout/- -/1 -/2" {
		t.Errorf("lines: %v", got)
	}
}

// TestJourneyUplift: a journey's uplift compares entries with entries.
// 100 entries were sent three steps each and 10 of them bought (their
// purchases attributed to whichever step came last); 100 entries were
// held out and 5 bought: 10% against 5%, not 10 of 300 emails.
func TestJourneyUplift(t *testing.T) {
	rows := []store.ReportRow{
		{Campaign: "welcome", Step: 1, Status: "sent", Deliveries: 100, Converted: 4, EntriesConverted: 10},
		{Campaign: "welcome", Step: 2, Status: "sent", Deliveries: 100, Converted: 3},
		{Campaign: "welcome", Step: 3, Status: "sent", Deliveries: 100, Converted: 3},
		{Campaign: "welcome", Variant: "holdout", Step: 1, Status: "held_out", Deliveries: 100, Converted: 5, EntriesConverted: 5},
	}
	lines := report.Build(rows, []report.Campaign{{Name: "welcome", Journey: true, Holdout: true}})
	if u := lines[0].Uplift; u == nil || u.Value != 0.05 {
		t.Fatalf("journey uplift = %+v, want 0.05", u)
	}
}
