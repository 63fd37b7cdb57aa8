// Package reload keeps a running process in step with the campaigns and
// templates on disk: a Watcher notices edits (and SIGHUP), and a Reloader
// loads the directories again and hands a valid set to the roles, all or
// nothing.
package reload

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultQuiet is how long a burst of file events must have been over
// before the Watcher reloads.
const DefaultQuiet = 300 * time.Millisecond

// Config configures a Watcher. Zero values take the documented defaults.
type Config struct {
	// Dirs are the directories watched: their files, not their
	// subdirectories. Each directory's parent is watched too, to see the
	// directory itself removed, replaced or created again. Required.
	Dirs []string
	// Suffixes, when set, are the file name endings that matter (".yaml",
	// ".tmpl"): events on other names are ignored. Default: every name.
	// Dot-files and editor scratch files (name~, #name#, vim's 4913,
	// *.swp, *.tmp) are ignored in any case.
	Suffixes []string
	// Quiet is how long no event must arrive before a burst of events
	// (an editor's save, a git checkout) counts as over. Default
	// DefaultQuiet.
	Quiet time.Duration
	// Signals triggers a reload at once for each value received (serve
	// passes SIGHUP here). Optional.
	Signals <-chan os.Signal
	// After starts a quiet period; default time.After. Tests end quiet
	// periods by hand with it.
	After func(time.Duration) <-chan time.Time
}

func (c Config) withDefaults() Config {
	if c.Quiet <= 0 {
		c.Quiet = DefaultQuiet
	}
	if c.After == nil {
		c.After = time.After
	}
	return c
}

// Watcher calls a function once per burst of changes under some
// directories, and once per signal.
type Watcher struct {
	cfg  Config
	dirs []string // absolute and clean
	fsw  *fsnotify.Watcher
	// watched is the directory each of dirs has a watch on.
	watched map[string]os.FileInfo
	reload  func(ctx context.Context, cause string)
	log     *slog.Logger

	cancel context.CancelFunc // set by Start
	done   chan struct{}
}

// New returns a Watcher that calls reload, with the cause ("files
// changed", "SIGHUP"), from one goroutine, so never twice at once. It
// fails when a directory cannot be watched.
func New(cfg Config, reload func(ctx context.Context, cause string), log *slog.Logger) (*Watcher, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Dirs) == 0 {
		return nil, errors.New("watch: no directory to watch")
	}
	w := &Watcher{cfg: cfg, reload: reload, log: log, watched: map[string]os.FileInfo{}}
	for _, d := range cfg.Dirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", d, err)
		}
		if !slices.Contains(w.dirs, abs) {
			w.dirs = append(w.dirs, abs)
		}
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	w.fsw = fsw
	for _, d := range w.dirs {
		fi, err := os.Stat(d)
		if err == nil {
			err = fsw.Add(d)
		}
		if err != nil {
			fsw.Close()
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the path is said already
			}
			return nil, fmt.Errorf("watch %s: %w", d, err)
		}
		w.watched[d] = fi
		if parent := filepath.Dir(d); parent != d {
			if err := fsw.Add(parent); err != nil {
				fsw.Close()
				return nil, fmt.Errorf("watch %s: %w", parent, err)
			}
		}
	}
	return w, nil
}

// Start watches in the background until Stop or until ctx ends.
func (w *Watcher) Start(ctx context.Context) error {
	if w.done != nil {
		return errors.New("watcher already started")
	}
	ctx, w.cancel = context.WithCancel(ctx)
	w.done = make(chan struct{})
	go func() {
		defer close(w.done)
		w.run(ctx)
	}()
	return nil
}

// Stop ends watching, waiting for a reload under way to finish or for ctx
// to end, and releases the file watches.
func (w *Watcher) Stop(ctx context.Context) error {
	if w.done == nil {
		return w.fsw.Close()
	}
	w.cancel()
	select {
	case <-w.done:
		return w.fsw.Close()
	case <-ctx.Done():
		return fmt.Errorf("stop watcher: %w", ctx.Err())
	}
}

func (w *Watcher) run(ctx context.Context) {
	var quiet <-chan time.Time // nil while no change waits
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			if !w.changed(ev) {
				continue
			}
			w.log.Debug("change seen", "path", ev.Name, "op", ev.Op.String())
			quiet = w.cfg.After(w.cfg.Quiet) // the burst goes on: wait again
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			// An overflow loses events: reload to be sure nothing is missed.
			w.log.Warn("watching campaigns and templates: some changes may have been missed; reloading", "err", err)
			quiet = w.cfg.After(w.cfg.Quiet)
		case <-quiet:
			quiet = nil
			w.reload(ctx, "files changed")
		case sig := <-w.cfg.Signals:
			quiet = nil // this reload reads the pending changes too
			w.reload(ctx, signalName(sig))
		}
	}
}

// changed reports whether ev may change what a reload loads, and watches a
// watched directory again when it comes back.
func (w *Watcher) changed(ev fsnotify.Event) bool {
	name := filepath.Clean(ev.Name)
	if slices.Contains(w.dirs, name) {
		// The directory itself was removed, renamed, or (seen from its
		// parent) created again: a removed watch does not come back by
		// itself.
		w.rewatch(name)
		return ev.Op != fsnotify.Chmod
	}
	if !slices.Contains(w.dirs, filepath.Dir(name)) {
		return false // a sibling of a watched directory
	}
	if ev.Op == fsnotify.Chmod {
		return false // touch, or an editor's attribute change
	}
	return w.relevant(filepath.Base(name))
}

// rewatch makes the watch of dir follow what the path now names: the
// directory that replaced it, or nothing until its parent's watch reports
// it created. A watch already on that directory is left alone, so that no
// event falls in a gap.
func (w *Watcher) rewatch(dir string) {
	fi, err := os.Stat(dir)
	if err == nil && w.watched[dir] != nil && os.SameFile(fi, w.watched[dir]) && slices.Contains(w.fsw.WatchList(), dir) {
		return
	}
	_ = w.fsw.Remove(dir) // the old directory's watch, if it is still there
	delete(w.watched, dir)
	if err != nil {
		return
	}
	if err := w.fsw.Add(dir); err != nil {
		w.log.Warn("cannot watch a directory that came back; edits in it need SIGHUP", "dir", dir, "err", err)
		return
	}
	w.watched[dir] = fi
	w.log.Info("watching a replaced directory again", "dir", dir)
}

// relevant reports whether a file name can matter to a load.
func (w *Watcher) relevant(base string) bool {
	if base == "..data" {
		// Kubernetes publishes a new ConfigMap version by swapping this
		// symlink: the one event such an update makes.
		return true
	}
	if scratch(base) {
		return false
	}
	if len(w.cfg.Suffixes) == 0 {
		return true
	}
	for _, s := range w.cfg.Suffixes {
		if strings.HasSuffix(base, s) {
			return true
		}
	}
	return false
}

// scratch reports dot-files and the files editors write beside the one
// being edited.
func scratch(base string) bool {
	switch {
	case strings.HasPrefix(base, "."), // vim's .x.swp, emacs's .#x lock, hidden files
		strings.HasPrefix(base, "#"), // emacs's #x# auto-save
		strings.HasSuffix(base, "~"), // backups
		base == "4913",               // vim's probe for a writable directory
		strings.HasSuffix(base, ".swp"), strings.HasSuffix(base, ".swx"),
		strings.HasSuffix(base, ".tmp"),
		strings.HasSuffix(base, "___jb_tmp___"), strings.HasSuffix(base, "___jb_old___"): // JetBrains' safe write
		return true
	}
	return false
}

func signalName(sig os.Signal) string {
	switch sig {
	case nil:
		return "signal"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return sig.String()
}
