package campaign_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nurture/internal/campaign"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*/want.txt from the current output")

// TestLoadBad loads each testdata/bad/CASE directory and compares every
// error, as file:line:col: message with file relative to the case
// directory, with CASE/want.txt.
func TestLoadBad(t *testing.T) {
	dirs, err := filepath.Glob("testdata/bad/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("no test cases")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			set, err := campaign.Load(dir)
			if err == nil {
				t.Fatalf("Load succeeded with %d campaigns, want errors", len(set.Campaigns))
			}
			var errs campaign.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load: %v (%T), want campaign.Errors", err, err)
			}
			if set == nil {
				t.Error("Load returned no Set with its Errors")
			}
			got := strings.ReplaceAll(errs.Error(), dir+string(filepath.Separator), "") + "\n"
			wantFile := filepath.Join(dir, "want.txt")
			if *update {
				if err := os.WriteFile(wantFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("errors differ\ngot:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestLoadGood(t *testing.T) {
	dirs, err := filepath.Glob("testdata/good/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range append(dirs, "../../campaigns") {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			if _, err := campaign.Load(dir); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// deref makes an optional bound comparable: nil or its value.
func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestLoadValues(t *testing.T) {
	set, err := campaign.Load("testdata/good/full")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range set.Campaigns {
		names = append(names, c.Name)
	}
	if got, want := strings.Join(names, ","), "flow,full,nulls"; got != want {
		t.Fatalf("campaigns %s, want %s (sorted by name, .hidden.yaml and notes.txt ignored)", got, want)
	}
	if got := len(set.Lifecycle.Stages); got != 3 {
		t.Fatalf("%d stages, want 3", got)
	}

	dir := "testdata/good/full"
	pos := func(file string, line, col int) campaign.Pos {
		return campaign.Pos{File: filepath.Join(dir, file), Line: line, Col: col}
	}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"full.Enabled", set.Campaign("full").Enabled, false},
		{"full.Description", set.Campaign("full").Description, "Every key set"},
		{"full.Schedule", set.Campaign("full").Schedule, "@every 1h"},
		{"full.SchedulePos", set.Campaign("full").SchedulePos, pos("a-full.yaml", 5, 12)},
		{"full.NamePos", set.Campaign("full").NamePos, pos("a-full.yaml", 2, 7)},
		{"full.Stages", strings.Join(set.Campaign("full").Audience.Stages, ","), "at_risk,active"},
		{"full.StagePos[1]", set.Campaign("full").Audience.StagePos[1], pos("a-full.yaml", 9, 7)},
		{"full.MinInactive", deref(set.Campaign("full").Audience.MinInactive), 30},
		{"full.MaxInactive", deref(set.Campaign("full").Audience.MaxInactive), 59},
		{"full.Where", set.Campaign("full").Audience.Where, "orders_count > 0 &&\n  attributes.plan != \"enterprise\"\n"},
		{"full.WherePos", set.Campaign("full").Audience.WherePos, pos("a-full.yaml", 14, 5)},
		{"full.WhereAt(2,3)", set.Campaign("full").Audience.WhereAt(2, 3), pos("a-full.yaml", 15, 7)},
		{"full.Cooldown", set.Campaign("full").Frequency.Cooldown, 30 * 24 * time.Hour},
		{"full.MaxSends", set.Campaign("full").Frequency.MaxSends, 3},
		{"full.Template", set.Campaign("full").Email.Template, "Full_v2"},
		{"full.TemplatePos", set.Campaign("full").Email.TemplatePos, pos("a-full.yaml", 20, 13)},
		{"full.From", set.Campaign("full").Email.From, "Shop <hello@example.com>"},
		{"full.Queue", set.Campaign("full").Queue, "bulk_mail"},

		{"flow.Enabled", set.Campaign("flow").Enabled, true},
		{"flow.MinInactive", deref(set.Campaign("flow").Audience.MinInactive), nil},
		{"flow.MaxInactive", deref(set.Campaign("flow").Audience.MaxInactive), 7},
		{"flow.Where", set.Campaign("flow").Audience.Where, `email endsWith "@example.com"`},
		{"flow.WherePos", set.Campaign("flow").Audience.WherePos, pos("b-flow.yaml", 1, 108)},
		{"flow.Cooldown", set.Campaign("flow").Frequency.Cooldown, 36 * time.Hour},
		{"flow.MaxSends", set.Campaign("flow").Frequency.MaxSends, 0},

		// Absent and null keys take their defaults.
		{"nulls.Enabled", set.Campaign("nulls").Enabled, true},
		{"nulls.Queue", set.Campaign("nulls").Queue, campaign.DefaultQueue},
		{"nulls.Description", set.Campaign("nulls").Description, ""},
		{"nulls.Stages", len(set.Campaign("nulls").Audience.Stages), 0},
		{"nulls.Cooldown", set.Campaign("nulls").Frequency.Cooldown, time.Duration(0)},
		{"nulls.From", set.Campaign("nulls").Email.From, ""},
		{"nulls.Schedule", set.Campaign("nulls").Schedule, "0 9 * * *"},

		{"stage[0].Name", set.Lifecycle.Stages[0].Name, "new"},
		{"stage[0].NamePos", set.Lifecycle.Stages[0].NamePos, pos("lifecycle.yaml", 2, 11)},
		{"stage[0].WhenPos", set.Lifecycle.Stages[0].WhenPos, pos("lifecycle.yaml", 3, 11)},
		{"stage[2].When", set.Lifecycle.Stages[2].When, ""},
		{"Lifecycle.Stage", set.Lifecycle.Stage("at_risk").When, "inactive_days >= 30"},
		{"Lifecycle.Stage missing", set.Lifecycle.Stage("nope") == nil, true},
		{"Campaign missing", set.Campaign("nope") == nil, true},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// TestSchedulesRunInUTC checks fire times do not depend on the machine's
// time zone nor on the zone of the instant given.
func TestSchedulesRunInUTC(t *testing.T) {
	set, err := campaign.Load("testdata/good/full")
	if err != nil {
		t.Fatal(err)
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	from := time.Date(2026, 3, 2, 9, 0, 0, 0, paris) // 08:00 UTC, a Monday
	tests := []struct {
		campaign string
		want     time.Time
	}{
		{"nulls", time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)},
		{"flow", time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}, // */15 9-17 mon-fri
		{"full", time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}, // @every 1h
	}
	for _, tt := range tests {
		got := set.Campaign(tt.campaign).Cron.Next(from)
		if !got.Equal(tt.want) {
			t.Errorf("%s: Next(%s) = %s, want %s", tt.campaign, from, got.UTC(), tt.want)
		}
	}
}

func TestLoadMissingDir(t *testing.T) {
	_, err := campaign.Load(filepath.Join(t.TempDir(), "nope"))
	if err == nil {
		t.Fatal("Load succeeded")
	}
	var errs campaign.Errors
	if errors.As(err, &errs) {
		t.Fatalf("got campaign.Errors %v, want a plain error", err)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want it to wrap os.ErrNotExist", err)
	}
}

func TestExprAt(t *testing.T) {
	start := campaign.Pos{File: "f.yaml", Line: 3, Col: 10}
	s := campaign.Stage{WhenPos: start}
	if got, want := s.WhenAt(1, 1), start; got != want {
		t.Errorf("WhenAt(1, 1) = %v, want %v", got, want)
	}
	if got, want := s.WhenAt(1, 5), (campaign.Pos{File: "f.yaml", Line: 3, Col: 14}); got != want {
		t.Errorf("WhenAt(1, 5) = %v, want %v", got, want)
	}
	if got, want := s.WhenAt(2, 3), (campaign.Pos{File: "f.yaml", Line: 4, Col: 12}); got != want {
		t.Errorf("WhenAt(2, 3) = %v, want %v", got, want)
	}
	if got := s.WhenAt(0, 0); got != start {
		t.Errorf("WhenAt(0, 0) = %v, want %v", got, start)
	}
}

func TestErrorsSort(t *testing.T) {
	es := campaign.Errors{
		{Pos: campaign.Pos{File: "b.yaml", Line: 1, Col: 1}, Msg: "b"},
		{Pos: campaign.Pos{File: "a.yaml", Line: 10, Col: 1}, Msg: "a10"},
		{Pos: campaign.Pos{File: "a.yaml", Line: 2, Col: 7}, Msg: "a2.7"},
		{Pos: campaign.Pos{File: "a.yaml", Line: 2, Col: 3}, Msg: "a2.3 first"},
		{Pos: campaign.Pos{File: "a.yaml", Line: 2, Col: 3}, Msg: "a2.3 second"},
	}
	es.Sort()
	want := "a.yaml:2:3: a2.3 first\na.yaml:2:3: a2.3 second\na.yaml:2:7: a2.7\na.yaml:10:1: a10\nb.yaml:1:1: b"
	if got := es.Error(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestEveryIsAnchored(t *testing.T) {
	// Fire times of @every are fixed instants, whenever a process asks: a
	// scheduler that starts, restarts or takes over agrees with the others.
	tests := []struct {
		every time.Duration
		from  string
		want  string
	}{
		{time.Hour, "2026-03-02T12:34:56Z", "2026-03-02T13:00:00Z"},
		{time.Hour, "2026-03-02T13:00:00Z", "2026-03-02T14:00:00Z"},
		{15 * time.Second, "2026-03-02T12:00:05Z", "2026-03-02T12:00:15Z"},
		{6 * time.Hour, "2026-03-02T23:59:59Z", "2026-03-03T00:00:00Z"},
	}
	for _, tt := range tests {
		from, _ := time.Parse(time.RFC3339, tt.from)
		want, _ := time.Parse(time.RFC3339, tt.want)
		if got := campaign.Every(tt.every).Next(from); !got.Equal(want) {
			t.Errorf("Every(%s).Next(%s) = %s, want %s", tt.every, tt.from, got.UTC().Format(time.RFC3339), tt.want)
		}
	}
	set, err := campaign.Load("testdata/good/full")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := set.Campaign("full").Cron.(campaign.Every); !ok {
		t.Errorf("@every 1h parsed as %T, want campaign.Every", set.Campaign("full").Cron)
	}
}

// TestLoadRefusesLargeFiles checks that files over MaxFileSize are refused
// before they are parsed, each with its size.
func TestLoadRefusesLargeFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) {
		// A valid start, padded with a comment: the file would load if it
		// were read.
		body := []byte("name: big\nschedule: \"@daily\"\nemail:\n  template: t\n#")
		body = append(body, strings.Repeat("x", size-len(body)-1)...)
		body = append(body, '\n')
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("lifecycle.yaml", campaign.MaxFileSize+1)
	write("big.yaml", 4096)
	if err := os.Truncate(filepath.Join(dir, "big.yaml"), 60<<20); err != nil {
		t.Fatal(err) // 60 MiB, sparse: cheap to make, costly to read
	}
	write("edge.yaml", campaign.MaxFileSize)
	_, err := campaign.Load(dir)
	var errs campaign.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load: %v, want campaign.Errors", err)
	}
	want := filepath.Join(dir, "big.yaml") + ":1:1: file is 62914560 bytes; the limit is 1 MiB\n" +
		filepath.Join(dir, "lifecycle.yaml") + ":1:1: file is 1048577 bytes; the limit is 1 MiB"
	if err.Error() != want {
		t.Errorf("errors:\n%s\nwant:\n%s", err, want)
	}
}

// TestLoadExtended checks the values of every key of the marketer's
// toolkit, their defaults, and the settings file.
func TestLoadExtended(t *testing.T) {
	dir := "testdata/good/extended"
	set, err := campaign.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	pos := func(file string, line, col int) campaign.Pos {
		return campaign.Pos{File: filepath.Join(dir, file), Line: line, Col: col}
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	cart, welcome, plain := set.Campaign("cart"), set.Campaign("welcome"), set.Campaign("plain")
	st := set.Settings
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"cart.Trigger.Event", cart.Trigger.Event, "cart_abandoned"},
		{"cart.Trigger.EventPos", cart.Trigger.EventPos, pos("cart.yaml", 4, 10)},
		{"cart.Trigger.Where", cart.Trigger.Where, "event.properties.total >= 20"},
		{"cart.Trigger.WhereAt(1,7)", cart.Trigger.WhereAt(1, 7), pos("cart.yaml", 5, 17)},
		{"cart.Trigger.Delay", cart.Trigger.Delay, time.Hour},
		{"cart.Trigger.Within", cart.Trigger.Within, campaign.DefaultWithin},
		{"cart.Schedule", cart.Schedule, ""},
		{"cart.Cron", cart.Cron == nil, true},
		{"cart.Priority", cart.Priority, -5},
		{"cart.SendWindow.Start", cart.SendWindow.Window.Start.String(), "09:00"},
		{"cart.SendWindow.End", cart.SendWindow.Window.End.String(), "18:00"},
		{"cart.SendWindow.Days", fmt.Sprint(cart.SendWindow.Window.Days), "[Monday Tuesday Wednesday Thursday Friday]"},
		{"cart.SendWindow.Timezone", cart.SendWindow.Timezone, "Europe/Paris"},
		{"cart.SendWindow.Location", cart.SendWindow.Location.String(), paris.String()},
		{"cart.ExitWhen", cart.ExitWhen, "last_purchase_at != nil && last_purchase_at > event.occurred_at"},
		{"cart.ExitWhenPos", cart.ExitWhenPos, pos("cart.yaml", 13, 13)},
		{"cart.Email.Template", cart.Email.Template, "cart"},
		{"cart.IsJourney", cart.IsJourney(), false},
		{"cart.Variants", len(cart.Variants), 2},
		{"cart.Variants[0]", fmt.Sprintf("%s %d %q %q %q", cart.Variants[0].Name, cart.Variants[0].Weight, cart.Variants[0].Template, cart.Variants[0].Subject, cart.Variants[0].From), `a 1 "" "" ""`},
		{"cart.Variants[1]", fmt.Sprintf("%s %d %q %q %q", cart.Variants[1].Name, cart.Variants[1].Weight, cart.Variants[1].Template, cart.Variants[1].Subject, cart.Variants[1].From), `b 3 "cart-b" "{{.FirstName}}, still thinking?" "Ann <ann@example.com>"`},
		{"cart.Variants[1].TemplatePos", cart.Variants[1].TemplatePos, pos("cart.yaml", 20, 15)},
		{"cart.Variants[1].SubjectPos", cart.Variants[1].SubjectPos, pos("cart.yaml", 21, 15)},
		{"cart.Variant(b)", cart.Variant("b").Weight, 3},
		{"cart.HoldoutBasisPoints", cart.HoldoutBasisPoints, 1250},
		{"cart.Templates", strings.Join(cart.Templates(), ","), "cart,cart-b"},
		{"cart.Experiment", fmt.Sprint(cart.Experiment()), "{cart [{a 1} {b 3}] 1250}"},
		{"cart window", set.EffectiveWindow(cart) == cart.SendWindow, true},

		{"welcome.Trigger.EnteredStage", welcome.Trigger.EnteredStage, "loyal"},
		{"welcome.Trigger.Event", welcome.Trigger.Event, ""},
		{"welcome.Trigger.Delay", welcome.Trigger.Delay, time.Duration(0)},
		{"welcome.Trigger.Within", welcome.Trigger.Within, 48 * time.Hour},
		{"welcome.Priority", welcome.Priority, 10},
		{"welcome.SendWindow.Any", welcome.SendWindow.Any, true},
		{"welcome window", set.EffectiveWindow(welcome) == nil, true},
		{"welcome.Frequency", welcome.Frequency, campaign.Frequency{Cooldown: 30 * 24 * time.Hour, MaxEntries: 2}},
		{"welcome.IsJourney", welcome.IsJourney(), true},
		{"welcome.Email.Template", welcome.Email.Template, ""},
		{"welcome.Steps", len(welcome.Steps), 3},
		{"welcome.Steps[0].After", welcome.Steps[0].After, time.Duration(0)},
		{"welcome.Steps[1].After", welcome.Steps[1].After, 48 * time.Hour},
		{"welcome.Steps[2].After", welcome.Steps[2].After, 120 * time.Hour},
		{"welcome.Steps[2].TemplatePos", welcome.Steps[2].TemplatePos, pos("welcome.yaml", 12, 15)},
		{"welcome.Steps[2].Where", welcome.Steps[2].Where, `attributes.plan != "enterprise"`},
		{"welcome.Steps[2].WhereAt(1,1)", welcome.Steps[2].WhereAt(1, 1), pos("welcome.yaml", 14, 13)},
		{"welcome.Templates", strings.Join(welcome.Templates(), ","), "welcome-1,welcome-2,welcome-3"},
		{"welcome.HoldoutBasisPoints", welcome.HoldoutBasisPoints, 1000},

		// A campaign without the new keys.
		{"plain.Trigger", plain.Trigger == nil, true},
		{"plain.Priority", plain.Priority, 0},
		{"plain.SendWindow", plain.SendWindow == nil, true},
		{"plain.Steps", plain.Steps == nil, true},
		{"plain.Variants", plain.Variants == nil, true},
		{"plain.HoldoutBasisPoints", plain.HoldoutBasisPoints, 0},
		{"plain.ExitWhen", plain.ExitWhen, ""},
		{"plain tracking", campaign.EffectiveTracking(plain, &st), campaign.Track{Opens: true, Clicks: true}},
		{"cart tracking", campaign.EffectiveTracking(cart, &st), campaign.Track{Opens: true}},
		{"welcome tracking", campaign.EffectiveTracking(welcome, &st), campaign.Track{}},
		{"welcome tracking, no settings", campaign.EffectiveTracking(welcome, nil), campaign.Track{}},
		{"plain tracking, no settings", campaign.EffectiveTracking(plain, nil), campaign.Track{Clicks: true}},
		{"welcome.Tracking.Pos", welcome.Tracking.Pos, pos("welcome.yaml", 17, 3)},
		{"tracked", len(set.Tracked()), 2},
		{"plain window", set.EffectiveWindow(plain) == st.SendWindow, true},

		{"Settings.File", st.File, filepath.Join(dir, "settings.yaml")},
		{"Settings.From", st.From, "Shop <hello@example.com>"},
		{"Settings.FrequencyCap", *st.FrequencyCap, campaign.Cap{Pos: pos("settings.yaml", 3, 16), Max: 3, Per: 168 * time.Hour}},
		{"Settings.SendWindow", fmt.Sprintf("%s-%s %v %s %v", st.SendWindow.Window.Start, st.SendWindow.Window.End, st.SendWindow.Window.Days, st.SendWindow.Timezone, st.SendWindow.Location == nil), "08:00-21:00 [] customer true"},
		{"Settings.ConversionWindow", st.ConversionWindow, 120 * time.Hour},
		{"Settings.RateLimits.Pos", st.RateLimits.Pos, pos("settings.yaml", 9, 3)},
		{"Settings.RateLimits.Global", *st.RateLimits.Global, campaign.Rate{Pos: pos("settings.yaml", 9, 11), N: 200, Per: time.Second}},
		{"Settings.RateLimits.Global.Interval", st.RateLimits.Global.Interval(), 5 * time.Millisecond},
		{"Settings.RateLimits.Domains", len(st.RateLimits.Domains), 3},
		{"gmail.com (lower-cased)", st.RateLimits.Domains["gmail.com"], campaign.Rate{Pos: pos("settings.yaml", 11, 16), N: 20, Per: time.Second}},
		{"outlook.com", st.RateLimits.Domains["outlook.com"].String(), "600/m"},
		{"outlook.com interval", st.RateLimits.Domains["outlook.com"].Interval(), 100 * time.Millisecond},
		{"yahoo.co.jp", st.RateLimits.Domains["yahoo.co.jp"], campaign.Rate{Pos: pos("settings.yaml", 13, 18), N: 1000, Per: time.Hour}},
		{"Settings.SoftBounceLimit", *st.SoftBounceLimit, campaign.SoftBounceLimit{Pos: pos("settings.yaml", 15, 20), Count: 5, Per: 14 * 24 * time.Hour}},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}

	// Without settings.yaml, the settings are zero and no window applies.
	full, err := campaign.Load("testdata/good/full")
	if err != nil {
		t.Fatal(err)
	}
	if s := full.Settings; s.From != "" || s.FrequencyCap != nil || s.SendWindow != nil || s.ConversionWindow != 0 || s.RateLimits != nil {
		t.Errorf("settings without settings.yaml: %+v, want zero", s)
	}
	if n, per := full.Settings.SoftBounces(); n != 3 || per != 720*time.Hour {
		t.Errorf("SoftBounces without settings.yaml = %d per %v, want 3 per 720h", n, per)
	}
	if w := full.EffectiveWindow(full.Campaign("full")); w != nil {
		t.Errorf("EffectiveWindow without any window = %+v, want nil", w)
	}
}

// TestLoadEmptySettings checks that a settings file of comments only is
// no settings, not an error.
func TestLoadEmptySettings(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"lifecycle.yaml": "stages:\n  - name: active\n",
		"settings.yaml":  "# from: \"Shop <hello@example.com>\"\n",
		"a.yaml":         "name: a\nschedule: \"@daily\"\nemail: {template: a}\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, err := campaign.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Campaigns) != 1 || set.Settings.From != "" {
		t.Errorf("campaigns %d, settings %+v; want 1 campaign and zero settings", len(set.Campaigns), set.Settings)
	}
}
