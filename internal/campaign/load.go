package campaign

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/robfig/cron/v3"

	"nurture/internal/suggest"
)

// LifecycleFile is the name of the file holding the lifecycle stages, in the
// same directory as the campaigns.
const LifecycleFile = "lifecycle.yaml"

// DefaultQueue is the Asynq queue of a campaign that names none.
const DefaultQueue = "default"

var (
	campaignName = regexp.MustCompile(`^[a-z0-9-]+$`)
	stageName    = regexp.MustCompile(`^[a-z0-9_-]+$`)
	queueName    = regexp.MustCompile(`^[a-z0-9_-]+$`)
	// Template names become file names, so no separators or dots.
	templateName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

// Load reads dir/lifecycle.yaml, dir/settings.yaml when present, and every
// other dir/*.yaml, one campaign per file. Subdirectories and files whose names start with "." are ignored; a
// *.yml file is an error rather than silently skipped.
//
// When anything is wrong in any file, Load returns Errors holding every
// problem found, sorted by file, line and column, together with the Set as
// far as it could be read: a linter can go on to check its expressions and
// templates and report every problem in one go. Such a Set must not be
// run. Positions name files as filepath.Join(dir, name). Other errors (dir
// unreadable) come with a nil Set.
func Load(dir string) (*Set, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read campaigns directory: %w", err)
	}
	var (
		set   Set
		errs  Errors
		files []string
	)
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || name == LifecycleFile || name == SettingsFile {
			continue
		}
		switch filepath.Ext(name) {
		case ".yaml":
			files = append(files, name)
		case ".yml":
			errs = append(errs, Error{
				Pos: Pos{File: filepath.Join(dir, name), Line: 1, Col: 1},
				Msg: "campaign files must be named *.yaml; rename this file",
			})
		}
	}
	slices.Sort(files)

	lcPath := filepath.Join(dir, LifecycleFile)
	lc, lcOK, lcErrs := loadLifecycle(lcPath)
	errs = append(errs, lcErrs...)
	set.Lifecycle = lc
	st, stErrs := loadSettings(filepath.Join(dir, SettingsFile))
	errs = append(errs, stErrs...)
	set.Settings = st

	firstByName := map[string]Pos{}
	for _, name := range files {
		c, cerrs := loadCampaign(filepath.Join(dir, name))
		errs = append(errs, cerrs...)
		// Without a readable lifecycle every stage would look unknown:
		// its own error is the one worth reading.
		if lcOK {
			for i, s := range c.Audience.Stages {
				if lc.Stage(s) == nil {
					errs = append(errs, Error{Pos: c.Audience.StagePos[i], Msg: "unknown stage " + strconv.Quote(s) + stageHint(s, lc.Names())})
				}
			}
			if t := c.Trigger; t != nil && t.EnteredStage != "" && lc.Stage(t.EnteredStage) == nil {
				errs = append(errs, Error{Pos: t.EnteredStagePos, Msg: "trigger.entered_stage: unknown stage " + strconv.Quote(t.EnteredStage) + stageHint(t.EnteredStage, lc.Names())})
			}
		}
		if c.Name != "" {
			if first, dup := firstByName[c.Name]; dup {
				errs = append(errs, Error{Pos: c.NamePos, Msg: fmt.Sprintf("duplicate campaign name %q (first defined at %s)", c.Name, first)})
			} else {
				firstByName[c.Name] = c.NamePos
			}
		}
		set.Campaigns = append(set.Campaigns, c)
	}
	slices.SortFunc(set.Campaigns, func(a, b Campaign) int { return cmp.Compare(a.Name, b.Name) })
	if len(errs) > 0 {
		errs.Sort()
		return &set, errs
	}
	return &set, nil
}

// stageHint suggests the stage closest to name, or lists them all.
func stageHint(name string, stages []string) string {
	if h := suggest.Hint(name, stages, strconv.Quote); h != "" {
		return h
	}
	return "; the stages are " + strings.Join(stages, ", ")
}

// Sort orders es by file, line and column, keeping the order of errors at
// the same position.
func (es Errors) Sort() {
	slices.SortStableFunc(es, func(a, b Error) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
		)
	})
}

// MaxFileSize is the largest campaign or lifecycle file Load reads: 1 MiB,
// hundreds of times a real campaign. YAML trees take many times the size
// of their source in memory, so a file pasted by mistake (a data export)
// must be refused before it is parsed.
const MaxFileSize = 1 << 20

// readFile reads a file of at most MaxFileSize bytes.
func readFile(path string) ([]byte, *Error) {
	src, size, err := readLimited(path, MaxFileSize)
	if err == nil && size > MaxFileSize {
		return nil, &Error{Pos: Pos{File: path, Line: 1, Col: 1}, Msg: fmt.Sprintf("file is %d bytes; the limit is %d MiB", size, MaxFileSize>>20)}
	}
	if err == nil {
		return src, nil
	}
	msg := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		msg = pe.Err.Error() // the position already names the file
	}
	if errors.Is(err, fs.ErrNotExist) {
		msg = "file not found"
	}
	return nil, &Error{Pos: Pos{File: path, Line: 1, Col: 1}, Msg: msg}
}

// readLimited reads path when it holds at most limit bytes. Otherwise it
// reads nothing, or at most limit+1 bytes of a file that grew since it was
// looked at, and returns its size (at least limit+1) with no content.
func readLimited(path string, limit int64) (src []byte, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if fi.Size() > limit {
		return nil, fi.Size(), nil
	}
	src, err = io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, 0, err
	}
	if int64(len(src)) > limit {
		return nil, int64(len(src)), nil
	}
	return src, int64(len(src)), nil
}

// loadLifecycle reports ok when the file could be read as a list of stages,
// even with errors in some of them, so that campaigns can be checked
// against the stage names it has.
func loadLifecycle(path string) (Lifecycle, bool, Errors) {
	lc := Lifecycle{File: path}
	src, rerr := readFile(path)
	if rerr != nil {
		return lc, false, Errors{*rerr}
	}
	d := &decoder{file: path}
	body := d.document(src)
	if body == nil {
		return lc, false, d.errs
	}
	top, ok := d.mapping(body, "", lifecycleKeys...)
	if !ok {
		return lc, false, d.errs
	}
	f, ok := top["stages"]
	if !ok {
		d.errorf(d.pos(body), `missing required key "stages"`)
		return lc, false, d.errs
	}
	items, ok := d.list(f.value, "stages", "a list of stages")
	if !ok {
		return lc, false, d.errs
	}
	if len(items) == 0 {
		d.errorf(f.key, "stages: list at least one stage")
	}
	first := map[string]Pos{}
	for _, item := range items {
		s, ok := d.stage(item)
		if !ok {
			continue
		}
		if s.Name != "" {
			if p, dup := first[s.Name]; dup {
				d.errorf(s.NamePos, "duplicate stage name %q (first defined at %s)", s.Name, p)
				continue
			}
			first[s.Name] = s.NamePos
		}
		lc.Stages = append(lc.Stages, s)
	}
	for _, s := range lc.Stages[:max(len(lc.Stages)-1, 0)] {
		if s.When == "" {
			d.errorf(s.Pos, "a stage without \"when\" matches everyone, so it must be the last stage")
		}
	}
	return lc, true, d.errs
}

func (d *decoder) stage(n ast.Node) (Stage, bool) {
	s := Stage{Pos: d.pos(n)}
	fields, ok := d.mapping(n, "stages", stageKeys...)
	if !ok {
		return s, false
	}
	if t, ok := d.required(fields, s.Pos, "name", "name"); ok {
		s.NamePos = t.pos
		if !stageName.MatchString(t.s) {
			d.errorf(t.pos, "name: %q must contain only a-z, 0-9, \"_\" and \"-\"", t.s)
		} else {
			s.Name = t.s
		}
	}
	if f, ok := fields["when"]; ok && f.value != nil {
		if t, ok := d.str(f.value, "when"); ok && strings.TrimSpace(t.s) != "" {
			s.When, s.WhenPos, s.whenFolded = t.s, t.pos, t.folded
		}
	}
	return s, true
}

func loadCampaign(path string) (Campaign, Errors) {
	c := Campaign{File: path, Enabled: true, Queue: DefaultQueue}
	src, rerr := readFile(path)
	if rerr != nil {
		return c, Errors{*rerr}
	}
	d := &decoder{file: path}
	body := d.document(src)
	if body == nil {
		return c, d.errs
	}
	top, ok := d.mapping(body, "", campaignKeys...)
	if !ok {
		return c, d.errs
	}
	top0 := d.pos(body)

	if t, ok := d.required(top, top0, "name", "name"); ok {
		c.NamePos = t.pos
		if campaignName.MatchString(t.s) {
			c.Name = t.s
		} else {
			d.errorf(t.pos, "name: %q must contain only a-z, 0-9 and \"-\"", t.s)
		}
	}
	if f, ok := top["description"]; ok && f.value != nil {
		if t, ok := d.str(f.value, "description"); ok {
			c.Description = t.s
		}
	}
	if f, ok := top["enabled"]; ok && f.value != nil {
		if b, ok := d.boolean(f.value, "enabled"); ok {
			c.Enabled = b
		}
	}
	// A key whose value is null counts as absent.
	present := func(key string) (field, bool) {
		f, ok := top[key]
		return f, ok && f.value != nil
	}
	trig, hasTrigger := present("trigger")
	_, hasSchedule := top["schedule"]
	switch {
	case !hasSchedule && !hasTrigger:
		d.errorf(top0, `missing required key "schedule" or "trigger"`)
	case hasSchedule:
		if hasTrigger {
			d.errorf(trig.key, `"schedule" and "trigger" cannot both be set: a campaign starts on a schedule or on a trigger`)
		}
		if t, ok := d.required(top, top0, "schedule", "schedule"); ok {
			c.Schedule, c.SchedulePos = t.s, t.pos
			sched, err := parseSchedule(t.s)
			if err != nil {
				d.errorf(t.pos, "schedule: %v", err)
			}
			c.Cron = sched
		}
	}
	if hasTrigger {
		// Read even beside a schedule, to report every problem at once.
		c.Trigger = d.trigger(trig.value)
	}
	if f, ok := present("priority"); ok {
		c.Priority, _ = d.integer(f.value, "priority")
	}
	if f, ok := present("send_window"); ok {
		c.SendWindow = d.sendWindow(f.value, "send_window", true)
	}
	if f, ok := present("conversion_window"); ok {
		if w, ok := d.duration(f.value, "conversion_window"); ok {
			if w == 0 {
				d.errorf(d.pos(f.value), "conversion_window: must be more than 0")
			} else {
				c.ConversionWindow = w
			}
		}
	}
	if f, ok := present("audience"); ok {
		c.Audience = d.audience(f.value)
	}
	steps, hasSteps := present("steps")
	email, hasEmail := present("email")
	switch {
	case hasSteps && hasEmail:
		d.errorf(steps.key, `"email" and "steps" cannot both be set: a campaign sends one email or a journey of steps`)
	case !hasSteps && !hasEmail:
		d.errorf(top0, `missing required key "email" or "steps"`)
	}
	if hasEmail {
		c.Email = d.email(email.value)
	}
	if hasSteps {
		// Read even beside an email, to report every problem at once.
		c.Steps = d.steps(steps.value)
	}
	journey := hasSteps && !hasEmail
	if f, ok := top["frequency"]; ok && f.value != nil {
		c.Frequency = d.frequency(f.value, journey)
	}
	if f, ok := top["exit_when"]; ok && f.value != nil {
		if t, ok := d.str(f.value, "exit_when"); ok && strings.TrimSpace(t.s) != "" {
			c.ExitWhen, c.ExitWhenPos, c.exitWhenFolded = t.s, t.pos, t.folded
		}
	}
	if f, ok := top["variants"]; ok && f.value != nil {
		if journey {
			d.errorf(f.key, "variants: a journey cannot have variants; they split the entries of a single-email campaign")
		} else {
			c.Variants = d.variants(f.value)
		}
	}
	if f, ok := top["holdout"]; ok && f.value != nil {
		c.HoldoutBasisPoints, c.HoldoutPos = d.holdout(f.value)
	}
	if f, ok := top["tracking"]; ok && f.value != nil {
		c.Tracking = d.tracking(f.value)
	}
	if f, ok := top["queue"]; ok && f.value != nil {
		if t, ok := d.str(f.value, "queue"); ok {
			if queueName.MatchString(t.s) {
				c.Queue = t.s
			} else {
				d.errorf(t.pos, "queue: %q must contain only a-z, 0-9, \"_\" and \"-\"", t.s)
			}
		}
	}
	return c, d.errs
}

// required reads a string that must be present and not blank; mpos is the
// position of the mapping it belongs to.
func (d *decoder) required(fields map[string]field, mpos Pos, key, path string) (text, bool) {
	f, ok := fields[key]
	if !ok {
		d.errorf(mpos, "missing required key %q", path)
		return text{}, false
	}
	if f.value == nil {
		d.errorf(f.key, "%s: must not be empty", path)
		return text{}, false
	}
	t, ok := d.str(f.value, path)
	if ok && strings.TrimSpace(t.s) == "" {
		d.errorf(t.pos, "%s: must not be empty", path)
		return text{}, false
	}
	return t, ok
}

func (d *decoder) audience(n ast.Node) Audience {
	var a Audience
	fields, ok := d.mapping(n, "audience", audienceKeys...)
	if !ok {
		return a
	}
	if f, ok := fields["stages"]; ok && f.value != nil {
		items, _ := d.list(f.value, "audience.stages", "a list of stage names")
		for _, item := range items {
			t, ok := d.str(item, "audience.stages")
			if !ok {
				continue
			}
			if i := slices.Index(a.Stages, t.s); i >= 0 {
				d.errorf(t.pos, "audience.stages: %q is listed twice", t.s)
				continue
			}
			a.Stages = append(a.Stages, t.s)
			a.StagePos = append(a.StagePos, t.pos)
		}
	}
	if f, ok := fields["inactive_days"]; ok && f.value != nil {
		if b, ok := d.mapping(f.value, "audience.inactive_days", inactiveKeys...); ok {
			bound := func(key string) *int {
				f, ok := b[key]
				if !ok || f.value == nil {
					return nil
				}
				v, ok := d.count(f.value, "audience.inactive_days."+key)
				if !ok {
					return nil
				}
				return &v
			}
			a.MinInactive, a.MaxInactive = bound("min"), bound("max")
			if a.MinInactive != nil && a.MaxInactive != nil && *a.MinInactive > *a.MaxInactive {
				d.errorf(d.pos(f.value), "audience.inactive_days: min %d is greater than max %d", *a.MinInactive, *a.MaxInactive)
			}
		}
	}
	if f, ok := fields["where"]; ok && f.value != nil {
		if t, ok := d.str(f.value, "audience.where"); ok && strings.TrimSpace(t.s) != "" {
			a.Where, a.WherePos, a.whereFolded = t.s, t.pos, t.folded
		}
	}
	return a
}

// frequency reads the frequency mapping; journey says the campaign is a
// journey, which counts entries (max_entries) rather than sends.
func (d *decoder) frequency(n ast.Node, journey bool) Frequency {
	var fr Frequency
	fields, ok := d.mapping(n, "frequency", frequencyKeys...)
	if !ok {
		return fr
	}
	if f, ok := fields["cooldown"]; ok && f.value != nil {
		fr.Cooldown, _ = d.duration(f.value, "frequency.cooldown")
	}
	if f, ok := fields["max_sends"]; ok && f.value != nil {
		if journey {
			d.errorf(f.key, "frequency.max_sends: a journey counts entries, not sends; use frequency.max_entries")
		} else {
			fr.MaxSends, _ = d.count(f.value, "frequency.max_sends")
		}
	}
	if f, ok := fields["max_entries"]; ok && f.value != nil {
		if !journey {
			d.errorf(f.key, "frequency.max_entries: a single-email campaign counts sends; use frequency.max_sends")
		} else {
			fr.MaxEntries, _ = d.count(f.value, "frequency.max_entries")
		}
	}
	return fr
}

// duration reads a duration written as parseCooldown accepts, or a bare 0.
func (d *decoder) duration(n ast.Node, path string) (time.Duration, bool) {
	if i, ok := n.(*ast.IntegerNode); ok && i.GetToken().Value == "0" {
		return 0, true // the one duration that needs no unit
	}
	if t, ok := n.(*ast.StringNode); ok {
		v, err := parseCooldown(t.Value)
		if err != nil {
			d.errorf(d.pos(t), "%s: %v", path, err)
			return 0, false
		}
		return v, true
	}
	d.expected(n, path, "a duration like 720h or 30d")
	return 0, false
}

func (d *decoder) email(n ast.Node) Email {
	var e Email
	fields, ok := d.mapping(n, "email", emailKeys...)
	if !ok {
		return e
	}
	if t, ok := d.required(fields, d.pos(n), "template", "email.template"); ok {
		e.TemplatePos = t.pos
		if templateName.MatchString(t.s) {
			e.Template = t.s
		} else {
			d.errorf(t.pos, "email.template: %q must contain only letters, digits, \"_\" and \"-\"", t.s)
		}
	}
	if f, ok := fields["from"]; ok && f.value != nil {
		if t, ok := d.str(f.value, "email.from"); ok {
			if _, err := mail.ParseAddress(t.s); err != nil {
				d.errorf(t.pos, "email.from: %q is not an email address: %v", t.s, err)
			} else {
				e.From = t.s
			}
		}
	}
	return e
}

// parseSchedule parses a standard 5-field cron spec or a descriptor
// (@daily, @every 1h, ...). Schedules are evaluated in UTC whatever the
// machine's time zone, so a time zone prefix is refused rather than
// half-honoured.
func parseSchedule(spec string) (sched cron.Schedule, err error) {
	spec = strings.TrimSpace(spec)
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, errors.New("time zone prefixes are not supported: schedules are evaluated in UTC")
	}
	if rest, ok := strings.CutPrefix(spec, "@every "); ok {
		// cron rounds anything under a second up to a second, negative too.
		if d, err := time.ParseDuration(strings.TrimSpace(rest)); err == nil && d < time.Second {
			return nil, fmt.Errorf("@every needs a duration of at least 1s, got %s", d)
		}
	}
	defer func() {
		// The cron parser panics on some malformed specs; a bad file
		// must come out as an error, not take the process down.
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("invalid cron expression %q", spec)
		}
	}()
	p := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	sched, err = p.Parse("CRON_TZ=UTC " + spec)
	if err != nil {
		return nil, fmt.Errorf("invalid cron expression: %w", err)
	}
	// A date that does not exist (February 30) never fires: the cron
	// package gives up after five years and returns the zero time.
	if sched.Next(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, fmt.Errorf("%q never fires", spec)
	}
	if every, ok := sched.(cron.ConstantDelaySchedule); ok {
		return Every(every.Delay), nil
	}
	return sched, nil
}

// Every is the schedule of "@every D": fire times are the multiples of D
// counted from a fixed origin (Go's zero time), so for a D that divides a
// day they are aligned to UTC midnight. cron's own @every counts from whenever it was asked, so each
// process, restart or reload would fire at different instants, and a tick
// repeated by a second scheduler would get an occurrence of its own.
type Every time.Duration

// Next returns the first multiple of the period after t.
func (e Every) Next(t time.Time) time.Time {
	d := time.Duration(e)
	return t.Truncate(d).Add(d)
}

// parseCooldown accepts a Go duration ("720h", "90m"), whole days ("30d"),
// or days followed by a Go duration ("1d12h").
func parseCooldown(s string) (time.Duration, error) {
	orig := s
	bad := fmt.Errorf("expected a duration like 720h or 30d, got %q", s)
	s = strings.TrimSpace(s)
	var days time.Duration
	if i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }); i > 0 && s[i] == 'd' {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n > 100_000 { // about 270 years; beyond, time.Duration overflows
			return 0, bad
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, bad
	}
	if d < 0 {
		return 0, fmt.Errorf("must not be negative, got %q", orig)
	}
	return days + d, nil
}
