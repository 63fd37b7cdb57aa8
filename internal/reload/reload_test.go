package reload_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"nurture/internal/campaign"
	"nurture/internal/content"
	"nurture/internal/metrics"
	"nurture/internal/reload"
	"nurture/internal/testenv"
)

// copyFixture copies the shared fixture's campaigns and templates into
// fresh directories.
func copyFixture(t *testing.T) (campaigns, templates string) {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"campaigns", "templates"} {
		if err := os.CopyFS(filepath.Join(root, d), os.DirFS(testenv.Fixture(d))); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(root, "campaigns"), filepath.Join(root, "templates")
}

// metric reads one sample from m's page, "" when absent.
func metric(t *testing.T, m *metrics.Metrics, name string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	match := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(rec.Body.String())
	if match == nil {
		return ""
	}
	return match[1]
}

func TestReloadIsAllOrNothing(t *testing.T) {
	campaigns, templates := copyFixture(t)
	first, err := content.Load(campaigns, templates)
	if err != nil {
		t.Fatal(err)
	}
	var applied []*content.Content
	m := metrics.New()
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	l := newLogs()
	r := reload.NewReloader(reload.ReloaderConfig{CampaignsDir: campaigns, TemplatesDir: templates, Now: func() time.Time { return now }},
		first, func(_ context.Context, c *content.Content) error { applied = append(applied, c); return nil }, m, l.logger())
	if got := metric(t, m, "nurture_reload_last_success_timestamp_seconds"); got != "1.7955108e+09" {
		t.Errorf("last success after start-up: %s, want 1.7955108e+09", got)
	}
	ctx := context.Background()

	// Valid edits: welcome only gains a comment and new layout, nudge's
	// cooldown changes, hello is new.
	write(t, filepath.Join(campaigns, "welcome.yaml"), "# Greets new customers.\nname: welcome\n\nschedule:   \"0 9 * * *\"\naudience: {stages: [new]}\nfrequency:\n  max_sends: 1\nemail:\n  template: welcome\n  from: \"Shop <hello@example.com>\"\n")
	nudge, err := os.ReadFile(filepath.Join(campaigns, "nudge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(campaigns, "nudge.yaml"), strings.Replace(string(nudge), "720h", "240h", 1))
	write(t, filepath.Join(campaigns, "hello.yaml"), "name: hello\nschedule: \"@hourly\"\nemail: {template: welcome}\n")
	now = now.Add(time.Minute)
	if err := r.Reload(ctx, "files changed"); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if len(applied) != 1 || applied[0].Campaigns().Campaign("hello") == nil || r.Current() != applied[0] {
		t.Fatalf("applied %d sets, want 1 with hello, now current", len(applied))
	}
	l.wait(t, "reloaded campaigns", "cause", "files changed", "campaigns", "3", "added", "hello", "changed", "nudge")
	if rec := l.all("reloaded campaigns")[0]; rec.attrs["removed"] != "" || rec.attrs["lifecycle"] != "" {
		t.Errorf("reload log: %v", rec.attrs)
	}

	// Two bad files: the set is refused whole, hello's removal too.
	if err := os.Remove(filepath.Join(campaigns, "hello.yaml")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(campaigns, "broken.yaml"), "name: broken\nschedule: every day\nemail: {template: welcome}\n")
	write(t, filepath.Join(campaigns, "nudge.yaml"), string(nudge)+"colour: red\n")
	now = now.Add(time.Minute)
	err = r.Reload(ctx, "SIGHUP")
	var errs campaign.Errors
	if !errors.Is(err, reload.ErrInvalid) || !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("Reload of a bad set: %v, want ErrInvalid with 2 errors", err)
	}
	if len(applied) != 1 || r.Current() != applied[0] {
		t.Fatalf("a bad set was applied (%d sets applied)", len(applied))
	}
	var refused []string
	for _, rec := range l.level(slog.LevelError) {
		refused = append(refused, rec.msg+" cause="+rec.attrs["cause"])
	}
	want := []string{
		"reload refused: " + filepath.Join(campaigns, "broken.yaml") + ":2:11: schedule: invalid cron expression: expected exactly 5 fields, found 2: [every day] cause=SIGHUP",
		"reload refused: " + filepath.Join(campaigns, "nudge.yaml") + ":11:1: unknown key \"colour\"; the keys here are name, description, enabled, schedule, trigger, priority, send_window, audience, frequency, email, steps, exit_when, variants, holdout, conversion_window, tracking, queue cause=SIGHUP",
		"reload refused; the previous campaigns and templates keep running cause=SIGHUP",
	}
	if strings.Join(refused, "\n") != strings.Join(want, "\n") {
		t.Errorf("error logs:\n  %s\nwant:\n  %s", strings.Join(refused, "\n  "), strings.Join(want, "\n  "))
	}
	for name, want := range map[string]string{
		`nurture_reloads_total{result="ok"}`:            "1",
		`nurture_reloads_total{result="invalid"}`:       "1",
		"nurture_reload_last_successful":                "0",
		"nurture_reload_last_success_timestamp_seconds": "1.79551086e+09", // the good reload's
	} {
		if got := metric(t, m, name); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}

	// Fixed: hello's removal goes through now.
	if err := os.Remove(filepath.Join(campaigns, "broken.yaml")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(campaigns, "nudge.yaml"), string(nudge))
	if err := r.Reload(ctx, "SIGHUP"); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	l.wait(t, "reloaded campaigns", "cause", "SIGHUP", "campaigns", "2", "removed", "hello", "changed", "nudge")
	if got := metric(t, m, "nurture_reload_last_successful"); got != "1" {
		t.Errorf("nurture_reload_last_successful = %s after a good reload", got)
	}
}

func TestReloadApplyFails(t *testing.T) {
	campaigns, templates := copyFixture(t)
	first, err := content.Load(campaigns, templates)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	l := newLogs()
	r := reload.NewReloader(reload.ReloaderConfig{CampaignsDir: campaigns, TemplatesDir: templates}, first,
		func(context.Context, *content.Content) error { return errors.New("restart worker: redis down") }, m, l.logger())
	if err := r.Reload(context.Background(), "SIGHUP"); err == nil || err.Error() != "apply reload: restart worker: redis down" {
		t.Fatalf("Reload: %v", err)
	}
	l.wait(t, "reload failed: the new campaigns and templates are valid but were not all taken", "err", "restart worker: redis down")
	if got := metric(t, m, `nurture_reloads_total{result="failed"}`); got != "1" {
		t.Errorf(`nurture_reloads_total{result="failed"} = %s, want 1`, got)
	}
}

func TestDiffIgnoresLayout(t *testing.T) {
	campaigns, templates := copyFixture(t)
	old, err := content.Load(campaigns, templates)
	if err != nil {
		t.Fatal(err)
	}
	// The same campaigns, moved to other files and laid out differently,
	// with a new template.
	if err := os.Remove(filepath.Join(campaigns, "welcome.yaml")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(campaigns, "a-welcome.yaml"), "# comment\nname: welcome\nemail:\n  from: \"Shop <hello@example.com>\"\n  template: welcome\nfrequency: {max_sends: 1}\naudience:\n  stages:\n    - new\nschedule: '0 9 * * *'\n")
	write(t, filepath.Join(campaigns, "lifecycle.yaml"), "# stages\n\nstages:\n  - {name: new, when: 'orders_count == 0 && days_since_signup <= 14'}\n  - name: lapsed\n    when: inactive_days >= 90\n  - name: at_risk\n    when: inactive_days >= 30 # a month\n  - name: active\n")
	write(t, filepath.Join(templates, "extra.subject.tmpl"), "Hi")
	write(t, filepath.Join(templates, "extra.html.tmpl"), "<p>Hi</p>")
	next, err := content.Load(campaigns, templates)
	if err != nil {
		t.Fatal(err)
	}
	d := reload.Diff(old, next)
	if len(d.Added)+len(d.Changed)+len(d.Removed) != 0 || d.Lifecycle || d.Settings || strings.Join(d.TemplatesAdded, ",") != "extra" {
		t.Errorf("Diff = %+v, want only the template extra added", d)
	}
	// A change of meaning is a change.
	write(t, filepath.Join(campaigns, "lifecycle.yaml"), "stages:\n  - {name: new, when: 'orders_count == 0 && days_since_signup <= 7'}\n  - name: lapsed\n    when: inactive_days >= 90\n  - name: at_risk\n    when: inactive_days >= 30\n  - name: active\n")
	write(t, filepath.Join(campaigns, "a-welcome.yaml"), "name: welcome\nschedule: '0 9 * * *'\naudience: {stages: [new]}\nemail: {template: welcome}\nfrequency: {max_sends: 1}\n")
	next, err = content.Load(campaigns, templates)
	if err != nil {
		t.Fatal(err)
	}
	if d := reload.Diff(old, next); strings.Join(d.Changed, ",") != "welcome" || !d.Lifecycle {
		t.Errorf("Diff = %+v, want welcome and the lifecycle changed", d)
	}
}

// TestReloadRateLimits checks that rate_limits come and go with the
// settings: a new rate is a settings change, its layout is not, and a bad
// rate is refused with where it is written while the last good one runs.
func TestReloadRateLimits(t *testing.T) {
	campaigns, templates := copyFixture(t)
	settings := filepath.Join(campaigns, "settings.yaml")
	write(t, settings, "rate_limits: {global: 200/s, domains: {gmail.com: 20/s}}\n")
	first, err := content.Load(campaigns, templates)
	if err != nil {
		t.Fatal(err)
	}
	var applied []*content.Content
	r := reload.NewReloader(reload.ReloaderConfig{CampaignsDir: campaigns, TemplatesDir: templates}, first,
		func(_ context.Context, c *content.Content) error { applied = append(applied, c); return nil }, metrics.New(), newLogs().logger())
	ctx := context.Background()

	// The same limits, laid out otherwise: no change.
	write(t, settings, "rate_limits:\n  domains:\n    GMAIL.com: 20/s\n  global: 200/s\n")
	next, err := content.Load(campaigns, templates)
	if err != nil {
		t.Fatal(err)
	}
	if d := reload.Diff(first, next); d.Settings {
		t.Errorf("Diff = %+v, want no settings change", d)
	}

	write(t, settings, "rate_limits: {global: 200/s, domains: {gmail.com: 10/s, outlook.com: 600/m}}\n")
	if err := r.Reload(ctx, "SIGHUP"); err != nil {
		t.Fatal(err)
	}
	if len(applied) != 1 {
		t.Fatalf("%d sets applied, want 1", len(applied))
	}
	rl := applied[0].Campaigns().Settings.RateLimits
	if got := fmt.Sprint(rl.Global, rl.Domains["gmail.com"], rl.Domains["outlook.com"]); got != "200/s 10/s 600/m" {
		t.Errorf("rate limits after reload: %s, want 200/s 10/s 600/m", got)
	}

	write(t, settings, "rate_limits: {domains: {gmail.com: 10/d}}\n")
	err = r.Reload(ctx, "SIGHUP")
	want := settings + `:1:36: rate_limits.domains.gmail.com: "10/d" is not a rate; write N/s, N/m or N/h (e.g. 20/s)`
	if !errors.Is(err, reload.ErrInvalid) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Reload of a bad rate: %v, want ErrInvalid with %s", err, want)
	}
	if len(applied) != 1 || r.Current() != applied[0] {
		t.Errorf("a bad rate was applied (%d sets applied)", len(applied))
	}
}
