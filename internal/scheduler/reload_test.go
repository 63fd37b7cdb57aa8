package scheduler_test

import (
	"bytes"
	"context"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"nurture/internal/content"
	"nurture/internal/scheduler"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

// logBuffer is a log that tests can read while the scheduler writes it.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the lines holding every one of parts.
func (l *logBuffer) lines(parts ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		all := line != ""
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			out = append(out, line)
		}
	}
	return out
}

// loadCampaigns loads the fixture's lifecycle and templates with the given
// campaign files.
func loadCampaigns(t *testing.T, files map[string]string) *content.Content {
	t.Helper()
	dir := t.TempDir()
	lc, err := os.ReadFile(filepath.Join(testenv.Fixture("campaigns"), "lifecycle.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files["lifecycle.yaml"] = string(lc)
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := content.Load(dir, testenv.Fixture("templates"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestReloadKeepsUnchangedEntries(t *testing.T) {
	e := newEnv(t)
	var logs logBuffer
	e.log = slog.New(slog.NewTextHandler(&logs, nil))
	const (
		welcome = "name: welcome\nschedule: \"0 9 * * *\"\naudience: {stages: [new]}\nfrequency: {max_sends: 1}\nemail: {template: welcome}\n"
		nudge   = "name: nudge\nschedule: \"0 9 * * *\"\naudience: {stages: [at_risk]}\nemail: {template: nudge}\nqueue: nudges\n"
		bye     = "name: bye\nschedule: \"0 9 * * *\"\naudience: {stages: [active]}\nemail: {template: nudge}\n"
	)
	e.c = loadCampaigns(t, map[string]string{"welcome.yaml": welcome, "nudge.yaml": nudge, "bye.yaml": bye})
	s := e.scheduler()
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	// Becoming leader at 09:00 plans the 09:00 fire time of each campaign.
	waitUntil(t, "the start-up ticks", func() bool {
		return len(logs.lines(`msg="tick done"`, "occurrence=2026-11-24T09:00:00Z")) == 3
	})

	// welcome says something new on the same schedule, nudge changes its
	// schedule, bye goes and hello comes.
	s.Reload(loadCampaigns(t, map[string]string{
		"welcome.yaml": "description: Greets new customers\n" + welcome,
		"nudge.yaml":   strings.Replace(nudge, `"0 9 * * *"`, `"@every 1s"`, 1),
		"hello.yaml":   "name: hello\nschedule: \"@every 1s\"\naudience: {stages: [new]}\nemail: {template: welcome}\n",
	}).Rules)
	waitUntil(t, "the reload", func() bool { return len(logs.lines("scheduler reloaded campaigns")) == 1 })
	if line := logs.lines("scheduler reloaded campaigns")[0]; !strings.Contains(line, "campaigns=3 kept=welcome started=hello rescheduled=nudge stopped=bye") {
		t.Errorf("reload: %s", line)
	}
	// The new entry runs: hello writes to the two new customers, as
	// welcome did.
	waitUntil(t, "hello's deliveries", func() bool {
		n := 0
		e.st.Deliveries(context.Background(), func(d *store.DeliveryRow) error {
			if d.Campaign == "hello" {
				n++
			}
			return nil
		})
		return n == 2
	})

	// The same set again keeps every entry.
	s.Reload(loadCampaigns(t, map[string]string{
		"welcome.yaml": "# a comment\n" + welcome,
		"nudge.yaml":   strings.Replace(nudge, `"0 9 * * *"`, `"@every 1s"`, 1),
		"hello.yaml":   "name: hello\nschedule: \"@every 1s\"\naudience: {stages: [new]}\nemail: {template: welcome}\n",
	}).Rules)
	waitUntil(t, "the second reload", func() bool { return len(logs.lines("scheduler reloaded campaigns")) == 2 })
	if line := logs.lines("scheduler reloaded campaigns")[1]; !strings.Contains(line, `campaigns=3 kept=hello,nudge,welcome started="" rescheduled="" stopped=""`) {
		t.Errorf("reload of the same schedules: %s", line)
	}
}

// TestReloadCatchesUpOnlyNewEntries reloads just before a fire time that
// the entries being started miss: they plan it, and the campaign whose
// entry was kept does not (its own entry fires it).
func TestReloadCatchesUpOnlyNewEntries(t *testing.T) {
	e := newEnv(t)
	var logs logBuffer
	e.log = slog.New(slog.NewTextHandler(&logs, nil))
	// Schedules that fire on the fixture's day only, so that the real
	// clock, which runs the cron entries, never fires them in the test.
	const (
		welcome = "name: welcome\nschedule: \"30 9 24 11 *\"\naudience: {stages: [new]}\nemail: {template: welcome}\n"
		nudge   = "name: nudge\nschedule: \"0 9 24 11 *\"\naudience: {stages: [at_risk]}\nemail: {template: nudge}\nqueue: nudges\n"
	)
	e.c = loadCampaigns(t, map[string]string{"welcome.yaml": welcome, "nudge.yaml": nudge})
	// The clock reads 09:00 until armed; then its next reading (Reload's)
	// is 09:29:59 and every later one 09:30:01, as if the reload took two
	// seconds across the 09:30 fire time.
	var (
		mu    sync.Mutex
		armed bool
		now   = at
	)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		if armed {
			armed = false
			t := now
			now = at.Add(30*time.Minute + time.Second)
			return t
		}
		return now
	}
	s := scheduler.New(scheduler.Config{LeaderPoll: 50 * time.Millisecond, ReconcileEvery: time.Hour, Now: clock},
		e.st, e.q, e.c.Rules, nil, e.log)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	waitUntil(t, "the start-up tick", func() bool {
		return len(logs.lines(`msg="tick done"`, "campaign=nudge", "occurrence=2026-11-24T09:00:00Z")) == 1
	})

	mu.Lock()
	armed, now = true, at.Add(30*time.Minute-time.Second)
	mu.Unlock()
	s.Reload(loadCampaigns(t, map[string]string{
		"welcome.yaml": welcome,
		"nudge.yaml":   strings.Replace(nudge, `"0 9 24 11 *"`, `"30 9 24 11 *"`, 1),
		"hello.yaml":   strings.Replace(welcome, "name: welcome", "name: hello", 1),
	}).Rules)
	waitUntil(t, "the reload", func() bool { return len(logs.lines("scheduler reloaded campaigns")) == 1 })
	if line := logs.lines("scheduler reloaded campaigns")[0]; !strings.Contains(line, "kept=welcome started=hello rescheduled=nudge stopped=\"\"") {
		t.Errorf("reload: %s", line)
	}
	var caught []string
	for _, line := range logs.lines("catching up the latest fire time") {
		i := strings.Index(line, "campaign=")
		caught = append(caught, line[i:])
	}
	want := []string{
		"campaign=nudge occurrence=2026-11-24T09:00:00Z", // becoming leader
		"campaign=hello occurrence=2026-11-24T09:30:00Z", // the reload: not welcome
		"campaign=nudge occurrence=2026-11-24T09:30:00Z",
	}
	if strings.Join(caught, "\n") != strings.Join(want, "\n") {
		t.Errorf("catch-up ticks:\n  %s\nwant:\n  %s", strings.Join(caught, "\n  "), strings.Join(want, "\n  "))
	}
	got := map[string]int{}
	e.st.Deliveries(context.Background(), func(d *store.DeliveryRow) error {
		got[d.Campaign+" "+d.Occurrence.UTC().Format("15:04")]++
		return nil
	})
	if want := map[string]int{"nudge 09:00": 1, "nudge 09:30": 1, "hello 09:30": 2}; !maps.Equal(got, want) {
		t.Errorf("deliveries by campaign and occurrence: %v, want %v", got, want)
	}
}
