// Package campaign parses and validates campaign and lifecycle YAML files.
// It is pure: it reads files and nothing else.
//
// Decoding is strict: unknown keys, values of the wrong type and missing
// required keys are errors, each reported at its file, line and column, and
// every problem in every file is reported at once. A key whose value is
// null (written "key:" or "key: ~") counts as absent. YAML anchors, aliases,
// merge keys and tags are refused. Expressions (stage "when", campaign
// "audience.where", "trigger.where", "exit_when" and each step's "where")
// are kept as text with their positions; package audience compiles them.
//
// settings.yaml, when present, holds defaults for every campaign; see
// Settings.
package campaign

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"nurture/internal/window"
)

// Pos is a position in a YAML file. Line and Col are 1-based.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col) }

// Error is one problem found in a file, printed as file:line:col: message.
type Error struct {
	Pos Pos
	Msg string
}

func (e Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Errors is every problem found in a set of files, sorted by file, line, column.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Stage is one lifecycle stage. An empty When matches everyone.
type Stage struct {
	Name    string
	NamePos Pos
	When    string
	WhenPos Pos // position of the first character of the expression text
	// Pos is the position of the stage's entry in the stages list.
	Pos Pos

	whenFolded bool // see exprAt
}

// WhenAt returns the position in the file of the character at line and col
// (both 1-based) of the When expression.
func (s *Stage) WhenAt(line, col int) Pos { return exprAt(s.WhenPos, s.whenFolded, line, col) }

// Lifecycle is the ordered list of stages from lifecycle.yaml.
type Lifecycle struct {
	File   string
	Stages []Stage
}

// Stage returns the stage with the given name, or nil.
func (l *Lifecycle) Stage(name string) *Stage {
	for i := range l.Stages {
		if l.Stages[i].Name == name {
			return &l.Stages[i]
		}
	}
	return nil
}

// Names returns the names of the stages, in order.
func (l *Lifecycle) Names() []string {
	names := make([]string, 0, len(l.Stages))
	for _, s := range l.Stages {
		if s.Name != "" {
			names = append(names, s.Name)
		}
	}
	return names
}

// Campaign is one campaigns/*.yaml file.
type Campaign struct {
	File        string
	Name        string
	NamePos     Pos
	Description string
	// Enabled is true when the file says so or does not say: a file placed
	// in the campaigns directory is meant to run. Write "enabled: false" to
	// keep a campaign without sending it.
	Enabled     bool
	Schedule    string
	SchedulePos Pos
	// Cron is Schedule parsed; its Next gives fire times in UTC.
	Cron      cron.Schedule
	Audience  Audience
	Frequency Frequency
	Email     Email
	// Queue is the Asynq queue, "default" when absent.
	Queue string

	// Trigger starts the campaign on an event or a stage entry instead of
	// a schedule; exactly one of Schedule and Trigger is set.
	Trigger *Trigger
	// Priority orders campaigns evaluated at the same instant when the
	// global frequency cap lets only some through: higher first.
	Priority int
	// SendWindow is the campaign's own window; nil means the settings'
	// default applies (see EffectiveWindow).
	SendWindow *SendWindow
	// ConversionWindow is how long after a send (or a held-out entry's
	// send time) a purchase is attributed to the campaign; zero means the
	// settings' default applies (see ConversionWindows).
	ConversionWindow time.Duration
	// Steps is a journey; exactly one of Email and Steps is set (Email's
	// Template is empty for a journey).
	Steps []Step
	// ExitWhen ends a journey, or a triggered email, when true.
	ExitWhen    string
	ExitWhenPos Pos
	// Variants split a single-email campaign's entries by weight.
	Variants []Variant
	// HoldoutBasisPoints is the share of entries held out (recorded,
	// never sent), in 1/10000: 10% is 1000.
	HoldoutBasisPoints int
	HoldoutPos         Pos
	// Tracking is the campaign's own open and click tracking; nil: the
	// settings' default (see EffectiveTracking).
	Tracking *Tracking

	exitWhenFolded bool // see exprAt
}

// ExitWhenAt returns the position in the file of the character at line and
// col (both 1-based) of the ExitWhen expression.
func (c *Campaign) ExitWhenAt(line, col int) Pos {
	return exprAt(c.ExitWhenPos, c.exitWhenFolded, line, col)
}

// IsJourney reports whether the campaign is a series of steps.
func (c *Campaign) IsJourney() bool { return len(c.Steps) > 0 }

// Templates returns every template the campaign may send: the email's or
// each step's, then each variant's override, without repeats.
func (c *Campaign) Templates() []string {
	var out []string
	add := func(t string) {
		if t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	add(c.Email.Template)
	for _, s := range c.Steps {
		add(s.Template)
	}
	for _, v := range c.Variants {
		add(v.Template)
	}
	return out
}

// Variant returns the variant with the given name, or nil.
func (c *Campaign) Variant(name string) *Variant {
	for i := range c.Variants {
		if c.Variants[i].Name == name {
			return &c.Variants[i]
		}
	}
	return nil
}

// Trigger starts a campaign on an event or on a stage entry. Exactly one of
// Event and EnteredStage is set.
type Trigger struct {
	Pos             Pos
	Event           string
	EventPos        Pos
	EnteredStage    string
	EnteredStagePos Pos
	// Where filters events; it may read "event" besides the facts.
	Where    string
	WherePos Pos
	// Delay is added to the event's time (or the observed stage entry) to
	// get the entry's due time.
	Delay time.Duration
	// Within is how late an entry may still be planned after its due
	// time; DefaultWithin when absent.
	Within time.Duration

	whereFolded bool // see exprAt
}

// DefaultWithin is how long after its due time a trigger may still be
// planned when the campaign does not say.
const DefaultWithin = 24 * time.Hour

// WhereAt returns the position in the file of the character at line and col
// (both 1-based) of the Where expression.
func (t *Trigger) WhereAt(line, col int) Pos { return exprAt(t.WherePos, t.whereFolded, line, col) }

// SendWindow is when a campaign's emails may go out.
type SendWindow struct {
	Pos Pos
	// Any ignores the settings' default window: send at any time.
	Any    bool
	Window window.Window
	// Timezone is "customer" (the customer's own zone) or an IANA name;
	// Location is that zone, nil for "customer".
	Timezone string
	Location *time.Location
}

// SendAt returns the first instant at or after t inside the window, in its
// fixed zone or else in customerZone.
func (w *SendWindow) SendAt(t time.Time, customerZone *time.Location) time.Time {
	loc := w.Location
	if loc == nil {
		loc = customerZone
	}
	if loc == nil {
		loc = time.UTC
	}
	return w.Window.Next(t, loc).UTC()
}

// Open reports whether t is inside the window.
func (w *SendWindow) Open(t time.Time, customerZone *time.Location) bool {
	loc := w.Location
	if loc == nil {
		loc = customerZone
	}
	if loc == nil {
		loc = time.UTC
	}
	return w.Window.Contains(t, loc)
}

// Step is one email of a journey.
type Step struct {
	Pos         Pos
	Template    string
	TemplatePos Pos
	// After is the time from the journey's start to this step's due time.
	After    time.Duration
	AfterPos Pos
	// Where, when false, skips this step; the journey goes on.
	Where    string
	WherePos Pos

	whereFolded bool // see exprAt
}

// WhereAt returns the position in the file of the character at line and col
// (both 1-based) of the Where expression.
func (s *Step) WhereAt(line, col int) Pos { return exprAt(s.WherePos, s.whereFolded, line, col) }

// Variant is one arm of an experiment; empty overrides keep the
// campaign's own template, subject and sender.
type Variant struct {
	Pos     Pos
	Name    string
	NamePos Pos
	// Weight is at least 1 (the default); shares follow the weights.
	Weight   int
	Template string
	// TemplatePos is where Template is written (zero when absent).
	TemplatePos Pos
	// Subject replaces the template's subject; it is itself a template.
	Subject string
	// SubjectPos is where Subject is written (zero when absent).
	SubjectPos Pos
	From       string
}

// Settings is campaigns/settings.yaml: defaults for every campaign.
type Settings struct {
	File string
	// From is the default sender (MAIL_FROM overrides it; a campaign's
	// email.from overrides both). Empty: not set.
	From string
	// FrequencyCap is the global cap across campaigns; nil: none.
	FrequencyCap *Cap
	// SendWindow is the default window of campaigns that set none; nil:
	// any time.
	SendWindow *SendWindow
	// ConversionWindow is the default attribution window; zero: not set.
	ConversionWindow time.Duration
	// Tracking is the default open and click tracking; nil: none.
	Tracking *Tracking
	// RateLimits caps how fast emails go out; nil: no cap.
	RateLimits *RateLimits
	// SoftBounceLimit is when soft bounces suppress an address; nil: not
	// set (see SoftBounces for the default).
	SoftBounceLimit *SoftBounceLimit
}

// RateLimits caps how fast every worker process together hands emails to
// the SMTP server.
type RateLimits struct {
	Pos Pos
	// Global caps every email; nil: no cap.
	Global *Rate
	// Domains caps the emails to each recipient domain, keyed by the
	// domain in lower case and matched exactly (gmail.com does not cover
	// googlemail.com nor a subdomain). Empty: no cap per domain.
	Domains map[string]Rate
}

// Rate is at most N emails per Per, evenly spaced: one every Interval.
type Rate struct {
	Pos Pos
	N   int
	Per time.Duration
}

// Interval is the least time between two emails at this rate.
func (r Rate) Interval() time.Duration {
	if r.N <= 0 {
		return 0
	}
	return r.Per / time.Duration(r.N)
}

// String spells the rate as settings.yaml does: 20/s, 600/m, 1000/h.
func (r Rate) String() string {
	unit := map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[r.Per]
	return fmt.Sprintf("%d/%s", r.N, unit)
}

// SoftBounceLimit suppresses an address after Count soft bounces within
// any interval of length Per.
type SoftBounceLimit struct {
	Pos   Pos
	Count int
	Per   time.Duration
}

// Default soft bounce limit, when settings.yaml sets none.
const (
	DefaultSoftBounceCount = 3
	DefaultSoftBouncePer   = 720 * time.Hour
)

// SoftBounces returns the soft bounce limit: the settings', or 3 per 720h.
func (s *Settings) SoftBounces() (count int, per time.Duration) {
	if s == nil || s.SoftBounceLimit == nil {
		return DefaultSoftBounceCount, DefaultSoftBouncePer
	}
	return s.SoftBounceLimit.Count, s.SoftBounceLimit.Per
}

// Cap is a global frequency cap: at most Max emails to one customer within
// any interval of length Per.
type Cap struct {
	Pos Pos
	Max int
	Per time.Duration
}

// EffectiveWindow is the window c's emails follow: its own, the settings'
// default, or nil (any time; also for "send_window: any").
func (s *Set) EffectiveWindow(c *Campaign) *SendWindow {
	w := c.SendWindow
	if w == nil {
		w = s.Settings.SendWindow
	}
	if w == nil || w.Any {
		return nil
	}
	return w
}

// DefaultConversionWindow is the attribution window of campaigns when
// neither they nor the settings set one.
const DefaultConversionWindow = 120 * time.Hour

// ConversionWindows returns each campaign's attribution window, and the
// default for campaigns not in the set (the settings', else
// DefaultConversionWindow).
func (s *Set) ConversionWindows() (by map[string]time.Duration, def time.Duration) {
	def = s.Settings.ConversionWindow
	if def == 0 {
		def = DefaultConversionWindow
	}
	by = make(map[string]time.Duration, len(s.Campaigns))
	for _, c := range s.Campaigns {
		by[c.Name] = cmp.Or(c.ConversionWindow, def)
	}
	return by, def
}

// Audience selects who a campaign targets.
type Audience struct {
	Stages      []string
	StagePos    []Pos // position of each entry of Stages
	MinInactive *int
	MaxInactive *int
	Where       string
	WherePos    Pos // position of the first character of the expression text

	whereFolded bool // see exprAt
}

// WhereAt returns the position in the file of the character at line and col
// (both 1-based) of the Where expression.
func (a *Audience) WhereAt(line, col int) Pos { return exprAt(a.WherePos, a.whereFolded, line, col) }

// exprAt maps a line and column inside an expression to its file. A
// single-line scalar or a literal block ("|") keeps the expression's layout,
// so the mapping is exact (short of escapes in double-quoted text). Folded
// text (">" blocks and plain or quoted scalars spread over several lines)
// has lost its line breaks, so the best we can say is where it starts.
func exprAt(start Pos, folded bool, line, col int) Pos {
	if folded || line < 1 || col < 1 {
		return start
	}
	p := start
	p.Line += line - 1
	p.Col += col - 1
	return p
}

// Frequency limits how often one customer receives a campaign.
type Frequency struct {
	// Cooldown is written as a Go duration ("720h", "90m") or as whole days
	// ("30d"), optionally followed by a Go duration ("1d12h"). Zero: no
	// cooldown.
	Cooldown time.Duration
	MaxSends int // zero: unlimited
	// MaxEntries caps a journey's entries per customer; zero: unlimited.
	MaxEntries int
}

// Email names the template and sender of a campaign's emails.
type Email struct {
	Template    string
	TemplatePos Pos
	From        string // empty: the configured default sender
}

// Set is a lifecycle and every campaign, as loaded from one directory.
type Set struct {
	Lifecycle Lifecycle
	// Settings is settings.yaml, zero when the file is absent.
	Settings  Settings
	Campaigns []Campaign // sorted by name
}

// Campaign returns the campaign with the given name, or nil.
func (s *Set) Campaign(name string) *Campaign {
	for i := range s.Campaigns {
		if s.Campaigns[i].Name == name {
			return &s.Campaigns[i]
		}
	}
	return nil
}
