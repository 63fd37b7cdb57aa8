package reload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"nurture/internal/campaign"
	"nurture/internal/content"
	"nurture/internal/metrics"
)

// ReloaderConfig configures a Reloader. Zero values take the documented
// defaults.
type ReloaderConfig struct {
	// CampaignsDir and TemplatesDir are loaded by content.Load. Required.
	CampaignsDir, TemplatesDir string
	// Now is the clock the last good load time is read from; default
	// time.Now.
	Now func() time.Time
}

// Reloader loads the campaigns and templates again and, when they are
// valid, hands them to the roles of the process. It is all or nothing: a
// set with any error is refused whole, and the running set stays.
type Reloader struct {
	cfg   ReloaderConfig
	apply func(context.Context, *content.Content) error
	m     *metrics.Metrics
	log   *slog.Logger

	mu      sync.Mutex // one reload at a time; guards current
	current *content.Content
}

// NewReloader returns a Reloader whose running set is current, loaded
// just now. apply hands a new valid set to the roles (the scheduler, the
// worker); it must take the whole set or report why not.
func NewReloader(cfg ReloaderConfig, current *content.Content, apply func(context.Context, *content.Content) error,
	m *metrics.Metrics, log *slog.Logger) *Reloader {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m.Loaded(cfg.Now())
	return &Reloader{cfg: cfg, apply: apply, m: m, log: log, current: current}
}

// Current returns the running set.
func (r *Reloader) Current() *content.Content {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.current
}

// ErrInvalid marks a reload refused because the files have errors; the
// error also holds every one of them (campaign.Errors).
var ErrInvalid = errors.New("campaigns or templates invalid")

// Reload loads the directories and, when the set is valid, applies it.
// cause says what asked ("files changed", "SIGHUP") and goes into the
// logs. An invalid set is logged one error per line (file:line:col:
// message) and refused: Reload returns an error wrapping ErrInvalid, and
// the running set stays. Reload is safe to call from several goroutines;
// reloads run one at a time.
func (r *Reloader) Reload(ctx context.Context, cause string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	log := r.log.With("cause", cause)
	next, err := content.Load(r.cfg.CampaignsDir, r.cfg.TemplatesDir)
	if err != nil {
		r.m.Reloaded(metrics.ReloadInvalid, r.cfg.Now())
		var errs campaign.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				log.Error("reload refused: " + e.Error())
			}
		} else {
			log.Error("reload refused: " + err.Error())
		}
		log.Error("reload refused; the previous campaigns and templates keep running", "errors", max(len(errs), 1))
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	change := Diff(r.current, next)
	if err := r.apply(ctx, next); err != nil {
		r.m.Reloaded(metrics.ReloadFailed, r.cfg.Now())
		log.Error("reload failed: the new campaigns and templates are valid but were not all taken", "err", err)
		// The roles that took the set run it: it is the running set now,
		// and the next reload compares with it.
		r.current = next
		return fmt.Errorf("apply reload: %w", err)
	}
	r.current = next
	r.m.Reloaded(metrics.ReloadOK, r.cfg.Now())
	log.Info("reloaded campaigns", change.attrs(len(next.Campaigns().Campaigns))...)
	return nil
}

// Change is what a new set changes in a running one.
type Change struct {
	// Added, Changed and Removed name campaigns, sorted. A campaign is
	// changed when anything it says changed; where it is written (its
	// file, lines, comments, layout) does not count.
	Added, Changed, Removed []string
	// Lifecycle and Settings report a change to lifecycle.yaml and
	// settings.yaml, which every campaign follows.
	Lifecycle, Settings bool
	// TemplatesAdded and TemplatesRemoved name templates, sorted.
	TemplatesAdded, TemplatesRemoved []string
}

// None reports whether the new set says the same as the old one, as far
// as campaigns, lifecycle, settings and template names go (the text of a
// template is not compared).
func (c Change) None() bool {
	return len(c.Added)+len(c.Changed)+len(c.Removed)+len(c.TemplatesAdded)+len(c.TemplatesRemoved) == 0 &&
		!c.Lifecycle && !c.Settings
}

func (c Change) attrs(campaigns int) []any {
	out := []any{"campaigns", campaigns}
	for _, l := range []struct {
		key   string
		names []string
	}{{"added", c.Added}, {"changed", c.Changed}, {"removed", c.Removed},
		{"templates_added", c.TemplatesAdded}, {"templates_removed", c.TemplatesRemoved}} {
		if len(l.names) > 0 {
			out = append(out, l.key, strings.Join(l.names, ","))
		}
	}
	if c.Lifecycle {
		out = append(out, "lifecycle", "changed")
	}
	if c.Settings {
		out = append(out, "settings", "changed")
	}
	if c.None() {
		out = append(out, "campaigns_changed", "none")
	}
	return out
}

// Diff compares two sets; a nil old set counts as empty.
func Diff(old, next *content.Content) Change {
	var ch Change
	var oldSet campaign.Set
	if old != nil {
		oldSet = *old.Campaigns()
	}
	newSet := next.Campaigns()
	for i := range newSet.Campaigns {
		c := &newSet.Campaigns[i]
		switch was := oldSet.Campaign(c.Name); {
		case was == nil:
			ch.Added = append(ch.Added, c.Name)
		case !Same(was, c):
			ch.Changed = append(ch.Changed, c.Name)
		}
	}
	for _, c := range oldSet.Campaigns {
		if newSet.Campaign(c.Name) == nil {
			ch.Removed = append(ch.Removed, c.Name)
		}
	}
	ch.Lifecycle = old != nil && !Same(&oldSet.Lifecycle, &newSet.Lifecycle)
	ch.Settings = old != nil && !Same(&oldSet.Settings, &newSet.Settings)
	var oldNames, newNames []string
	if old != nil && old.Templates != nil {
		oldNames = old.Templates.Names()
	}
	if next.Templates != nil {
		newNames = next.Templates.Names()
	}
	for _, n := range newNames {
		if !slices.Contains(oldNames, n) {
			ch.TemplatesAdded = append(ch.TemplatesAdded, n)
		}
	}
	for _, n := range oldNames {
		if !slices.Contains(newNames, n) {
			ch.TemplatesRemoved = append(ch.TemplatesRemoved, n)
		}
	}
	slices.Sort(ch.Added)
	slices.Sort(ch.Changed)
	slices.Sort(ch.Removed)
	return ch
}

// Same reports whether a and b (pointers to values of one type from
// package campaign) say the same thing. Positions (campaign.Pos), the
// names of the files they were read from and the unexported fields of
// package campaign, which only help positions, are left out.
func Same[T any](a, b *T) bool {
	return same(reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem())
}

var (
	posType      = reflect.TypeFor[campaign.Pos]()
	locationType = reflect.TypeFor[*time.Location]()
	campaignPkg  = posType.PkgPath()
)

func same(a, b reflect.Value) bool {
	t := a.Type()
	if t != b.Type() {
		return false
	}
	switch t {
	case posType:
		return true
	case locationType:
		// Two loads of one zone are two values: compare the names.
		if a.IsNil() || b.IsNil() || !a.CanInterface() || !b.CanInterface() {
			return a.Pointer() == b.Pointer()
		}
		return a.Interface().(*time.Location).String() == b.Interface().(*time.Location).String()
	}
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if t.PkgPath() == campaignPkg && (!f.IsExported() || f.Name == "File") {
				continue
			}
			if !same(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return same(a.Elem(), b.Elem())
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !same(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for it := a.MapRange(); it.Next(); {
			bv := b.MapIndex(it.Key())
			if !bv.IsValid() || !same(it.Value(), bv) {
				return false
			}
		}
		return true
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return a.Uint() == b.Uint()
	case reflect.Float32, reflect.Float64:
		return a.Float() == b.Float()
	case reflect.Complex64, reflect.Complex128:
		return a.Complex() == b.Complex()
	case reflect.String:
		return a.String() == b.String()
	default: // funcs, channels: the same only when they are the same value
		return a.Pointer() == b.Pointer()
	}
}
