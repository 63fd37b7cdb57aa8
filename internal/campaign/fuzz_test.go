package campaign_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nurture/internal/campaign"
)

const fuzzLifecycle = "stages:\n  - name: new\n    when: orders_count == 0\n  - name: active\n"

// FuzzLoad feeds arbitrary bytes to Load, once as a campaign file and once
// as the lifecycle file. Load must not panic, and whatever it rejects must
// come back as campaign.Errors with usable positions and one-line messages.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*/*.yaml")
	for _, path := range seeds {
		if src, err := os.ReadFile(path); err == nil {
			f.Add(src)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		for _, files := range []map[string][]byte{
			{"lifecycle.yaml": []byte(fuzzLifecycle), "fuzz.yaml": src},
			{"lifecycle.yaml": src},
		} {
			dir := t.TempDir()
			for name, content := range files {
				if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := campaign.Load(dir)
			if err == nil {
				continue
			}
			var errs campaign.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load: %v (%T), want campaign.Errors", err, err)
			}
			for _, e := range errs {
				if e.Pos.Line < 1 || e.Pos.Col < 1 || !strings.HasPrefix(e.Pos.File, dir) {
					t.Errorf("bad position in %q", e.Error())
				}
				if e.Msg == "" || strings.Contains(e.Msg, "\n") {
					t.Errorf("message not on one line: %q", e.Msg)
				}
			}
		}
	})
}

// FuzzSchedule aims at the cron parser, which has panicked on malformed
// specs before: Load must turn any schedule into a value or an error.
func FuzzSchedule(f *testing.F) {
	for _, s := range []string{"0 9 * * *", "@daily", "@every 1h", "*/15 9-17 * * mon-fri", "0 0 30 2 *", "TZ=UTC", "1-5/0 * * * *", "? * * * *"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		dir := t.TempDir()
		files := map[string]string{
			"lifecycle.yaml": fuzzLifecycle,
			"c.yaml":         fmt.Sprintf("name: c\nschedule: %q\nemail: {template: c}\n", spec),
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		set, err := campaign.Load(dir)
		if err != nil {
			return
		}
		// A schedule that loads must fire.
		from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		if next := set.Campaigns[0].Cron.Next(from); !next.After(from) {
			t.Errorf("schedule %q: Next(%s) = %s", spec, from, next)
		}
	})
}
