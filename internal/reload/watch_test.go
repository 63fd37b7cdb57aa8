package reload_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"nurture/internal/reload"
)

// logs records what a logger was given, for tests to wait on.
type logs struct {
	mu      sync.Mutex
	records []record
	added   chan struct{} // closed and replaced at each record
}

type record struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func newLogs() *logs { return &logs{added: make(chan struct{})} }

func (l *logs) logger() *slog.Logger { return slog.New(&logHandler{l: l}) }

// wait returns the first record with msg and every attribute of attrs
// ("key", "value", ...), waiting up to 10s for it.
func (l *logs) wait(t *testing.T, msg string, attrs ...string) record {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		l.mu.Lock()
		for _, r := range l.records {
			if r.match(msg, attrs...) {
				l.mu.Unlock()
				return r
			}
		}
		added := l.added
		l.mu.Unlock()
		select {
		case <-added:
		case <-deadline:
			t.Fatalf("no log %q %v within 10s; logged:\n%s", msg, attrs, l)
		}
	}
}

// all returns the records with msg and attrs.
func (l *logs) all(msg string, attrs ...string) []record {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []record
	for _, r := range l.records {
		if r.match(msg, attrs...) {
			out = append(out, r)
		}
	}
	return out
}

// level returns the records of one level.
func (l *logs) level(level slog.Level) []record {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []record
	for _, r := range l.records {
		if r.level == level {
			out = append(out, r)
		}
	}
	return out
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, r := range l.records {
		fmt.Fprintf(&b, "  %s %s %v\n", r.level, r.msg, r.attrs)
	}
	return b.String()
}

func (r record) match(msg string, attrs ...string) bool {
	if r.msg != msg {
		return false
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		if r.attrs[attrs[i]] != attrs[i+1] {
			return false
		}
	}
	return true
}

type logHandler struct {
	l     *logs
	attrs []slog.Attr
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	rec := record{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	h.l.mu.Lock()
	h.l.records = append(h.l.records, rec)
	close(h.l.added)
	h.l.added = make(chan struct{})
	h.l.mu.Unlock()
	return nil
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &logHandler{l: h.l, attrs: append(slices.Clone(h.attrs), as...)}
}

func (h *logHandler) WithGroup(string) slog.Handler { return h }

// watched starts a Watcher on two fresh directories whose quiet periods end
// only when the test sends on the returned channel; each reload's cause
// arrives on reloads.
type watched struct {
	campaigns, templates string
	quietOver            chan time.Time
	signals              chan os.Signal
	reloads              chan string
	logs                 *logs
}

func startWatcher(t *testing.T) *watched {
	t.Helper()
	root := t.TempDir()
	w := &watched{
		campaigns: filepath.Join(root, "campaigns"), templates: filepath.Join(root, "templates"),
		quietOver: make(chan time.Time), signals: make(chan os.Signal, 1),
		reloads: make(chan string, 100), logs: newLogs(),
	}
	for _, d := range []string{w.campaigns, w.templates} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	wt, err := reload.New(reload.Config{
		Dirs:     []string{w.campaigns, w.templates},
		Suffixes: []string{".yaml", ".yml", ".tmpl"},
		Signals:  w.signals,
		After:    func(time.Duration) <-chan time.Time { return w.quietOver },
	}, func(_ context.Context, cause string) { w.reloads <- cause }, w.logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := wt.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return w
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// saveAs writes path the way editors save: a temporary dot-file renamed
// over it, which makes one event on path.
func saveAs(t *testing.T, path, body string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	write(t, tmp, body)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// endQuiet ends the quiet period the watcher waits in.
func (w *watched) endQuiet(t *testing.T) {
	t.Helper()
	select {
	case w.quietOver <- time.Time{}:
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher is not waiting for a quiet period")
	}
}

func (w *watched) nextReload(t *testing.T) string {
	t.Helper()
	select {
	case cause := <-w.reloads:
		return cause
	case <-time.After(10 * time.Second):
		t.Fatal("no reload within 10s")
		return ""
	}
}

func TestBurstIsOneReload(t *testing.T) {
	w := startWatcher(t)
	// A burst like a git checkout's, with an editor's scratch files.
	for i := range 10 {
		write(t, filepath.Join(w.campaigns, fmt.Sprintf("c%d.yaml", i)), "name: c\n")
	}
	write(t, filepath.Join(w.templates, "hello.subject.tmpl"), "Hi")
	// Kubernetes swaps this symlink to publish a ConfigMap's new version.
	if err := os.Symlink(w.templates, filepath.Join(w.campaigns, "..data")); err != nil {
		t.Fatal(err)
	}
	for _, scratch := range []string{".c1.yaml.swp", "c1.yaml~", "4913", "#c1.yaml#", "c1.yaml.tmp", "notes.txt", "c1.yaml___jb_tmp___"} {
		write(t, filepath.Join(w.campaigns, scratch), "x")
	}
	if err := os.Remove(filepath.Join(w.campaigns, "c9.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(w.campaigns, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(w.campaigns, "sub", "deep.yaml"), "x") // not watched: a subdirectory
	// Events arrive in order: once the last file's is seen, all are.
	last := filepath.Join(w.campaigns, "z.yaml")
	saveAs(t, last, "name: z\n")
	w.logs.wait(t, "change seen", "path", last)
	select {
	case cause := <-w.reloads:
		t.Fatalf("reloaded (%s) before the burst was over", cause)
	default:
	}

	w.endQuiet(t)
	if cause := w.nextReload(t); cause != "files changed" {
		t.Fatalf("reload cause %q, want \"files changed\"", cause)
	}
	// The next reload is the signal's: the burst made exactly one.
	w.signals <- syscall.SIGHUP
	if cause := w.nextReload(t); cause != "SIGHUP" {
		t.Fatalf("reload after the burst: %q, want SIGHUP (the burst reloaded twice?)", cause)
	}

	var seen []string
	for _, r := range w.logs.all("change seen") {
		if rel, _ := filepath.Rel(filepath.Dir(w.campaigns), r.attrs["path"]); !slices.Contains(seen, rel) {
			seen = append(seen, rel)
		}
	}
	slices.Sort(seen)
	want := []string{"campaigns/..data", "campaigns/c0.yaml", "campaigns/c1.yaml", "campaigns/c2.yaml", "campaigns/c3.yaml", "campaigns/c4.yaml",
		"campaigns/c5.yaml", "campaigns/c6.yaml", "campaigns/c7.yaml", "campaigns/c8.yaml", "campaigns/c9.yaml",
		"campaigns/z.yaml", "templates/hello.subject.tmpl"}
	if !slices.Equal(seen, want) {
		t.Errorf("changes seen:\n  %s\nwant:\n  %s", strings.Join(seen, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestSignalReloadsWithoutWaiting(t *testing.T) {
	w := startWatcher(t)
	// A change waits for its quiet period, which the test never ends; a
	// signal reloads at once.
	saveAs(t, filepath.Join(w.campaigns, "a.yaml"), "name: a\n")
	w.logs.wait(t, "change seen", "path", filepath.Join(w.campaigns, "a.yaml"))
	w.signals <- syscall.SIGHUP
	if cause := w.nextReload(t); cause != "SIGHUP" {
		t.Fatalf("reload cause %q, want SIGHUP", cause)
	}
}

func TestReplacedDirectoryIsWatchedAgain(t *testing.T) {
	w := startWatcher(t)
	// A deployment moves the directory away and puts a new one in place.
	if err := os.Rename(w.campaigns, w.campaigns+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(w.campaigns, 0o755); err != nil {
		t.Fatal(err)
	}
	w.logs.wait(t, "watching a replaced directory again", "dir", w.campaigns)
	saveAs(t, filepath.Join(w.campaigns, "a.yaml"), "name: a\n")
	w.logs.wait(t, "change seen", "path", filepath.Join(w.campaigns, "a.yaml"))
	w.endQuiet(t)
	if cause := w.nextReload(t); cause != "files changed" {
		t.Fatalf("reload cause %q, want \"files changed\"", cause)
	}
	// The old directory is no longer watched.
	write(t, filepath.Join(w.campaigns+".old", "b.yaml"), "name: b\n")
	saveAs(t, filepath.Join(w.templates, "t.subject.tmpl"), "Hi")
	w.logs.wait(t, "change seen", "path", filepath.Join(w.templates, "t.subject.tmpl"))
	if got := w.logs.all("change seen", "path", filepath.Join(w.campaigns+".old", "b.yaml")); len(got) > 0 {
		t.Errorf("a change in the replaced directory was seen: %v", got)
	}
}

func TestNewRefusesMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "campaigns")
	_, err := reload.New(reload.Config{Dirs: []string{dir}}, func(context.Context, string) {}, newLogs().logger())
	if want := "watch " + dir + ": no such file or directory"; err == nil || err.Error() != want {
		t.Fatalf("New: %v, want %s", err, want)
	}
}
