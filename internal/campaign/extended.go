package campaign

import (
	"fmt"
	"math"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"nurture/internal/experiment"
	"nurture/internal/suggest"
	"nurture/internal/window"
)

// The keys each mapping accepts, in the order error messages list them.
// Keys returns them for tests that hold the JSON Schema to the decoder.
var (
	campaignKeys = []string{"name", "description", "enabled", "schedule", "trigger", "priority", "send_window",
		"audience", "frequency", "email", "steps", "exit_when", "variants", "holdout", "conversion_window", "tracking", "queue"}
	audienceKeys       = []string{"stages", "inactive_days", "where"}
	inactiveKeys       = []string{"min", "max"}
	frequencyKeys      = []string{"cooldown", "max_sends", "max_entries"}
	emailKeys          = []string{"template", "from"}
	triggerKeys        = []string{"event", "entered_stage", "where", "delay", "within"}
	windowKeys         = []string{"start", "end", "days", "timezone"}
	stepKeys           = []string{"template", "after", "where"}
	variantKeys        = []string{"name", "weight", "template", "subject", "from"}
	lifecycleKeys      = []string{"stages"}
	stageKeys          = []string{"name", "when"}
	settingsKeys       = []string{"from", "frequency_cap", "send_window", "conversion_window", "rate_limits", "tracking", "soft_bounce_limit"}
	frequencyCapKeys   = []string{"max", "per"}
	rateLimitKeys      = []string{"global", "domains"}
	softBounceKeys     = []string{"count", "per"}
	variantName        = regexp.MustCompile(`^[a-z0-9-]+$`)
	dayNames           = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"} // indexed by time.Weekday
	dayNamesFromMonday = append(slices.Clone(dayNames[1:]), dayNames[0])
)

// Keys returns, for each mapping of the given kind of file ("campaign",
// "lifecycle" or "settings"), the keys the decoder accepts. Mappings are
// named by their path: "" for the document, "audience.inactive_days",
// "steps[]" for each item of a list.
func Keys(kind string) map[string][]string {
	var m map[string][]string
	switch kind {
	case "campaign":
		m = map[string][]string{
			"":                       campaignKeys,
			"trigger":                triggerKeys,
			"send_window":            windowKeys,
			"audience":               audienceKeys,
			"audience.inactive_days": inactiveKeys,
			"frequency":              frequencyKeys,
			"email":                  emailKeys,
			"steps[]":                stepKeys,
			"variants[]":             variantKeys,
			"tracking":               trackingKeys,
		}
	case "lifecycle":
		m = map[string][]string{"": lifecycleKeys, "stages[]": stageKeys}
	case "settings":
		m = map[string][]string{"": settingsKeys, "frequency_cap": frequencyCapKeys, "send_window": windowKeys,
			"rate_limits": rateLimitKeys, "tracking": trackingKeys, "soft_bounce_limit": softBounceKeys}
	}
	for k, v := range m {
		m[k] = slices.Clone(v)
	}
	return m
}

// Experiment is the campaign's variants and holdout as package experiment
// assigns them.
func (c *Campaign) Experiment() experiment.Plan {
	p := experiment.Plan{Campaign: c.Name, HoldoutBasisPoints: c.HoldoutBasisPoints}
	for _, v := range c.Variants {
		p.Variants = append(p.Variants, experiment.Variant{Name: v.Name, Weight: v.Weight})
	}
	return p
}

func (d *decoder) trigger(n ast.Node) *Trigger {
	t := &Trigger{Pos: d.pos(n), Within: DefaultWithin}
	fields, ok := d.mapping(n, "trigger", triggerKeys...)
	if !ok {
		return t
	}
	_, hasEvent := fields["event"]
	st, hasStage := fields["entered_stage"]
	switch {
	case hasEvent && hasStage:
		d.errorf(st.key, `trigger: "event" and "entered_stage" cannot both be set: a campaign starts on an event or on a stage entry`)
	case !hasEvent && !hasStage:
		d.errorf(t.Pos, `trigger: missing required key "event" or "entered_stage"`)
	case hasEvent:
		if s, ok := d.required(fields, t.Pos, "event", "trigger.event"); ok {
			t.Event, t.EventPos = s.s, s.pos
		}
	default:
		if s, ok := d.required(fields, t.Pos, "entered_stage", "trigger.entered_stage"); ok {
			t.EnteredStagePos = s.pos
			if stageName.MatchString(s.s) {
				t.EnteredStage = s.s
			} else {
				d.errorf(s.pos, "trigger.entered_stage: %q must contain only a-z, 0-9, \"_\" and \"-\"", s.s)
			}
		}
	}
	if f, ok := fields["where"]; ok && f.value != nil {
		if s, ok := d.str(f.value, "trigger.where"); ok && strings.TrimSpace(s.s) != "" {
			if hasStage && !hasEvent {
				d.errorf(f.key, "trigger.where: a stage entry has no event to filter; put conditions on the customer in audience.where")
			} else {
				t.Where, t.WherePos, t.whereFolded = s.s, s.pos, s.folded
			}
		}
	}
	if f, ok := fields["delay"]; ok && f.value != nil {
		t.Delay, _ = d.duration(f.value, "trigger.delay")
	}
	if f, ok := fields["within"]; ok && f.value != nil {
		if w, ok := d.duration(f.value, "trigger.within"); ok {
			if w == 0 {
				d.errorf(d.pos(f.value), "trigger.within: must be more than 0, or no entry would ever be planned")
			} else {
				t.Within = w
			}
		}
	}
	return t
}

// sendWindow reads a send window; allowAny accepts the scalar "any",
// which campaigns write to ignore the settings' default.
func (d *decoder) sendWindow(n ast.Node, path string, allowAny bool) *SendWindow {
	sw := &SendWindow{Pos: d.pos(n), Timezone: "customer"}
	if s, ok := n.(*ast.StringNode); ok {
		switch {
		case s.Value == "any" && allowAny:
			sw.Any = true
			return sw
		case s.Value == "any":
			d.errorf(d.pos(n), `%s: "any" is for a campaign to ignore this default; to send at any time, leave %s out`, path, path)
			return nil
		case !allowAny:
			d.expected(n, path, "a mapping with start and end")
			return nil
		}
		d.errorf(d.pos(n), `%s: expected "any" or a mapping with start and end, got %s`, path, describe(n))
		return nil
	}
	fields, ok := d.mapping(n, path, windowKeys...)
	if !ok {
		return nil
	}
	good := true
	clock := func(key string) (window.Clock, Pos) {
		t, ok := d.required(fields, sw.Pos, key, path+"."+key)
		if !ok {
			good = false
			return 0, Pos{}
		}
		c, err := window.ParseClock(strings.TrimSpace(t.s))
		if err != nil {
			d.errorf(t.pos, "%s.%s: %v", path, key, err)
			good = false
		}
		return c, t.pos
	}
	start, _ := clock("start")
	end, endPos := clock("end")
	sw.Window.Start, sw.Window.End = start, end
	if good {
		if err := sw.Window.Validate(); err != nil {
			d.errorf(endPos, "%s: %v", path, err)
			good = false
		}
	}
	if f, ok := fields["days"]; ok && f.value != nil {
		items, _ := d.list(f.value, path+".days", "a list of days such as [mon, tue]")
		for _, item := range items {
			t, ok := d.str(item, path+".days")
			if !ok {
				good = false
				continue
			}
			day := slices.Index(dayNames, t.s)
			switch {
			case day < 0:
				hint := suggest.Hint(strings.ToLower(t.s), dayNamesFromMonday, strconv.Quote)
				if hint == "" {
					hint = "; the days are " + strings.Join(dayNamesFromMonday, ", ")
				}
				d.errorf(t.pos, "%s.days: unknown day %q%s", path, t.s, hint)
				good = false
			case slices.Contains(sw.Window.Days, time.Weekday(day)):
				d.errorf(t.pos, "%s.days: %q is listed twice", path, t.s)
			default:
				sw.Window.Days = append(sw.Window.Days, time.Weekday(day))
			}
		}
		if len(items) == 0 && good {
			d.errorf(d.pos(f.value), "%s.days: list at least one day, or leave days out for every day", path)
			good = false
		}
	}
	if f, ok := fields["timezone"]; ok && f.value != nil {
		if t, ok := d.str(f.value, path+".timezone"); ok {
			switch name := strings.TrimSpace(t.s); {
			case name == "customer":
			case name == "" || name == "Local" || strings.EqualFold(name, "local"):
				// Local is the machine's zone: campaigns must not depend on it.
				d.errorf(t.pos, "%s.timezone: %q is not a time zone; write customer or an IANA name such as Europe/Paris", path, t.s)
				good = false
			default:
				loc, err := time.LoadLocation(name)
				if err != nil {
					d.errorf(t.pos, "%s.timezone: unknown time zone %q; write customer or an IANA name such as Europe/Paris", path, t.s)
					good = false
				} else {
					sw.Timezone, sw.Location = name, loc
				}
			}
		} else {
			good = false
		}
	}
	if !good {
		return nil
	}
	return sw
}

func (d *decoder) steps(n ast.Node) []Step {
	items, ok := d.list(n, "steps", "a list of steps")
	if !ok {
		return nil
	}
	if len(items) == 0 {
		d.errorf(d.pos(n), "steps: list at least one step")
		return nil
	}
	var (
		steps     []Step
		prevAfter time.Duration
	)
	for i, item := range items {
		path := fmt.Sprintf("steps[%d]", i+1)
		s := Step{Pos: d.pos(item)}
		fields, ok := d.mapping(item, path, stepKeys...)
		if !ok {
			continue
		}
		if t, ok := d.required(fields, s.Pos, "template", path+".template"); ok {
			s.TemplatePos = t.pos
			if templateName.MatchString(t.s) {
				s.Template = t.s
			} else {
				d.errorf(t.pos, "%s.template: %q must contain only letters, digits, \"_\" and \"-\"", path, t.s)
			}
		}
		s.AfterPos = s.Pos
		if f, ok := fields["after"]; ok && f.value != nil {
			s.AfterPos = d.pos(f.value)
			if after, ok := d.duration(f.value, path+".after"); ok {
				s.After = after
				if after < prevAfter {
					d.errorf(s.AfterPos, "%s.after: %s is earlier than the step before it (%s); steps are sent in order, so after must not decrease",
						path, fmtDuration(after), fmtDuration(prevAfter))
				}
			}
		}
		prevAfter = max(prevAfter, s.After)
		if f, ok := fields["where"]; ok && f.value != nil {
			if t, ok := d.str(f.value, path+".where"); ok && strings.TrimSpace(t.s) != "" {
				s.Where, s.WherePos, s.whereFolded = t.s, t.pos, t.folded
			}
		}
		steps = append(steps, s)
	}
	return steps
}

// fmtDuration spells a duration as written in campaigns: "48h", not "48h0m0s".
func fmtDuration(v time.Duration) string {
	s := v.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func (d *decoder) variants(n ast.Node) []Variant {
	items, ok := d.list(n, "variants", "a list of variants")
	if !ok {
		return nil
	}
	if len(items) == 0 {
		d.errorf(d.pos(n), "variants: list at least one variant")
		return nil
	}
	var out []Variant
	first := map[string]Pos{}
	for i, item := range items {
		path := fmt.Sprintf("variants[%d]", i+1)
		v := Variant{Pos: d.pos(item), Weight: 1}
		fields, ok := d.mapping(item, path, variantKeys...)
		if !ok {
			continue
		}
		if t, ok := d.required(fields, v.Pos, "name", path+".name"); ok {
			v.NamePos = t.pos
			switch p, dup := first[t.s]; {
			case t.s == experiment.Holdout:
				d.errorf(t.pos, "%s.name: %q is reserved for the entries held out; name the variant otherwise", path, t.s)
			case !variantName.MatchString(t.s):
				d.errorf(t.pos, "%s.name: %q must contain only a-z, 0-9 and \"-\"", path, t.s)
			case dup:
				d.errorf(t.pos, "%s.name: duplicate variant name %q (first defined at %s)", path, t.s, p)
			default:
				v.Name = t.s
				first[t.s] = t.pos
			}
		}
		if f, ok := fields["weight"]; ok && f.value != nil {
			if w, ok := d.count(f.value, path+".weight"); ok {
				if w < 1 {
					d.errorf(d.pos(f.value), "%s.weight: must be at least 1", path)
				} else {
					v.Weight = w
				}
			}
		}
		if f, ok := fields["template"]; ok && f.value != nil {
			if t, ok := d.str(f.value, path+".template"); ok {
				v.TemplatePos = t.pos
				if templateName.MatchString(t.s) {
					v.Template = t.s
				} else {
					d.errorf(t.pos, "%s.template: %q must contain only letters, digits, \"_\" and \"-\"", path, t.s)
				}
			}
		}
		if f, ok := fields["subject"]; ok && f.value != nil {
			if t, ok := d.str(f.value, path+".subject"); ok {
				switch {
				case strings.TrimSpace(t.s) == "":
					d.errorf(t.pos, "%s.subject: must not be empty", path)
				case strings.ContainsAny(t.s, "\r\n"):
					d.errorf(t.pos, "%s.subject: must be a single line", path)
				default:
					v.Subject, v.SubjectPos = t.s, t.pos
				}
			}
		}
		if f, ok := fields["from"]; ok && f.value != nil {
			if t, ok := d.str(f.value, path+".from"); ok {
				if _, err := mail.ParseAddress(t.s); err != nil {
					d.errorf(t.pos, "%s.from: %q is not an email address: %v", path, t.s, err)
				} else {
					v.From = t.s
				}
			}
		}
		out = append(out, v)
	}
	return out
}

// holdout reads a share written "10%" or "2.5%" (at most two decimals) as
// basis points.
func (d *decoder) holdout(n ast.Node) (int, Pos) {
	p := d.pos(n)
	s, ok := n.(*ast.StringNode)
	if !ok {
		d.expected(n, "holdout", "a share such as 10%")
		return 0, p
	}
	bp, err := parseShare(s.Value)
	if err != nil {
		d.errorf(p, "holdout: %v", err)
		return 0, p
	}
	if bp <= 0 || bp >= 10000 {
		d.errorf(p, "holdout: must be more than 0%% and less than 100%%, got %q", s.Value)
		return 0, p
	}
	return bp, p
}

// parseShare parses "N%" or "N.NN%" into basis points (1/10000).
func parseShare(s string) (int, error) {
	bad := fmt.Errorf("expected a share such as 10%% or 2.5%%, got %q", s)
	num, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
	if !ok {
		return 0, bad
	}
	whole, frac, _ := strings.Cut(num, ".")
	if whole == "" || len(whole) > 5 || len(frac) > 2 || strings.Contains(num, ".") && frac == "" {
		return 0, bad
	}
	for _, r := range whole + frac {
		if r < '0' || r > '9' {
			return 0, bad
		}
	}
	w, _ := strconv.Atoi(whole)
	f := 0
	if frac != "" {
		f, _ = strconv.Atoi(frac)
		if len(frac) == 1 {
			f *= 10
		}
	}
	return w*100 + f, nil
}

// integer reads a whole number, negative or not.
func (d *decoder) integer(n ast.Node, path string) (int, bool) {
	if i, ok := n.(*ast.IntegerNode); ok {
		switch v := i.Value.(type) {
		case int64:
			if v >= math.MinInt32 && v <= math.MaxInt32 {
				return int(v), true
			}
		case uint64:
			if v <= math.MaxInt32 {
				return int(v), true
			}
		}
	}
	d.expected(n, path, "an integer")
	return 0, false
}
