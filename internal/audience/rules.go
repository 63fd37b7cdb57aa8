package audience

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"nurture/internal/campaign"
	"nurture/internal/suggest"
)

// Rules is a campaign set with its expressions compiled. It is immutable
// and safe for concurrent use.
type Rules struct {
	set     *campaign.Set
	stages  []stageRule
	targets []*Target // sorted by campaign name
	vms     *sync.Pool
}

type stageRule struct {
	stage *campaign.Stage
	prog  *vm.Program // nil: matches everyone
}

// Target decides who is in one campaign's audience. It is safe for
// concurrent use.
type Target struct {
	// Campaign is the campaign as loaded; do not modify it.
	Campaign *campaign.Campaign
	where    *vm.Program // nil: no condition
	// triggerWhere, exitWhen and steps[i] are the campaign's trigger.where,
	// exit_when and each step's where; nil: no condition.
	triggerWhere *vm.Program
	exitWhen     *vm.Program
	steps        []*vm.Program
	vms          *sync.Pool
	// attributes says some expression this target runs (a stage's when or
	// its where) reads attributes.
	attributes bool
}

// NeedsAttributes reports whether evaluating this target reads customer
// attributes. When it does not, the planner skips decoding them, which is a
// large part of the cost of reading a candidate.
func (t *Target) NeedsAttributes() bool { return t.attributes }

// reads reports whether prog refers to the name.
func reads(prog *vm.Program, name string) bool {
	if prog == nil {
		return false
	}
	v := &identFinder{name: name}
	node := prog.Node()
	ast.Walk(&node, v)
	return v.found != nil
}

// EvalError is an expression that failed while running, for instance
// comparing days_since_purchase with a number for a customer who never
// bought. Pos points into the YAML file at the failing operation when expr
// says where it is, else at the start of the expression.
type EvalError struct {
	Pos campaign.Pos
	// What names the expression: `stage "new" when` or `campaign "winback" audience.where`.
	What string
	Err  error
}

func (e *EvalError) Error() string {
	msg := e.Err.Error()
	var fe *file.Error
	if errors.As(e.Err, &fe) {
		msg = fe.Message // the position says where; skip expr's snippet
	}
	return fmt.Sprintf("%s: %s: %s", e.Pos, e.What, firstLine(msg))
}

func (e *EvalError) Unwrap() error { return e.Err }

// Load loads the campaign set in dir and compiles it. Like campaign.Load,
// it reports every problem in one campaign.Errors, expression errors
// included, even in files that have other problems.
func Load(dir string) (*Rules, error) {
	set, err := campaign.Load(dir)
	if set == nil {
		return nil, err
	}
	var errs campaign.Errors
	if err != nil && !errors.As(err, &errs) {
		return nil, err
	}
	r, err := Compile(set)
	var cerrs campaign.Errors
	if errors.As(err, &cerrs) {
		errs = append(errs, cerrs...)
	} else if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return r, nil
}

// Compile compiles every stage's when, and every campaign's audience.where,
// trigger.where, exit_when and each step's where, once. Compile errors come
// back as campaign.Errors pointing at the offending column in the YAML
// file.
func Compile(set *campaign.Set) (*Rules, error) {
	if set == nil {
		return nil, errors.New("compile rules: no campaign set")
	}
	r := &Rules{set: set, vms: &sync.Pool{New: func() any { return new(vm.VM) }}}
	var errs campaign.Errors
	for i := range set.Lifecycle.Stages {
		s := &set.Lifecycle.Stages[i]
		sr := stageRule{stage: s}
		if s.When != "" {
			prog, err := compile(s.When, scope{stage: true})
			if err != nil {
				errs = append(errs, compileError(err, "when", s.WhenPos, s.WhenAt))
			}
			sr.prog = prog
		}
		r.stages = append(r.stages, sr)
	}
	stagesReadAttributes := false
	for _, sr := range r.stages {
		stagesReadAttributes = stagesReadAttributes || reads(sr.prog, "attributes")
	}
	for i := range set.Campaigns {
		c := &set.Campaigns[i]
		t := &Target{Campaign: c, vms: r.vms}
		// Only an event trigger has an event for its expressions to read.
		byEvent := scope{event: c.Trigger != nil && c.Trigger.Event != ""}
		if c.Audience.Where != "" {
			prog, err := compile(c.Audience.Where, scope{})
			if err != nil {
				errs = append(errs, compileError(err, "audience.where", c.Audience.WherePos, c.Audience.WhereAt))
			}
			t.where = prog
		}
		if tr := c.Trigger; tr != nil && tr.Where != "" {
			prog, err := compile(tr.Where, byEvent)
			if err != nil {
				errs = append(errs, compileError(err, "trigger.where", tr.WherePos, tr.WhereAt))
			}
			t.triggerWhere = prog
		}
		if c.ExitWhen != "" {
			prog, err := compile(c.ExitWhen, byEvent)
			if err != nil {
				errs = append(errs, compileError(err, "exit_when", c.ExitWhenPos, c.ExitWhenAt))
			}
			t.exitWhen = prog
		}
		if len(c.Steps) > 0 {
			t.steps = make([]*vm.Program, len(c.Steps))
		}
		for j := range c.Steps {
			st := &c.Steps[j]
			if st.Where == "" {
				continue
			}
			prog, err := compile(st.Where, scope{})
			if err != nil {
				errs = append(errs, compileError(err, fmt.Sprintf("steps[%d].where", j+1), st.WherePos, st.WhereAt))
			}
			t.steps[j] = prog
		}
		t.attributes = stagesReadAttributes || reads(t.where, "attributes") ||
			reads(t.triggerWhere, "attributes") || reads(t.exitWhen, "attributes")
		for _, prog := range t.steps {
			t.attributes = t.attributes || reads(prog, "attributes")
		}
		r.targets = append(r.targets, t)
	}
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	slices.SortFunc(r.targets, func(a, b *Target) int { return strings.Compare(a.Campaign.Name, b.Campaign.Name) })
	return r, nil
}

// MaxExprNodes bounds the size of one when or where expression, in nodes
// of its syntax tree (a name, a number, an operator: about five characters
// each). Evaluation cost grows with it, for every customer of every tick;
// real expressions have tens of nodes.
const MaxExprNodes = 1000

// scope is what an expression may read beyond the facts every expression
// has.
type scope struct {
	// stage: the expression is a stage's when, which cannot read stage,
	// only known once stages are evaluated.
	stage bool
	// event: the expression belongs to a campaign started by an event
	// (its trigger.where or exit_when) and may read event.
	event bool
}

// clockMessage is the error for a call of now(), which expr would take for
// the wall clock.
const clockMessage = "now() would read the wall clock and ignore --at, so dry runs would lie; " +
	"write now, without parentheses: the evaluation time"

// compile compiles a boolean expression over Facts. The builtin now() is
// disabled: evaluations must depend on the instant they are made for
// (run-once --at), not on the wall clock; the fact now is that instant.
// An expression cannot read what its scope does not know: stage in a
// stage's when, event outside an event-triggered campaign's trigger.where
// and exit_when.
func compile(src string, sc scope) (*vm.Program, error) {
	// now() is checked before compiling: with the builtin disabled, expr
	// would call the fact now and say a time is not callable.
	if tree, err := parser.Parse(src); err == nil {
		v := &callFinder{name: "now"}
		ast.Walk(&tree.Node, v)
		if v.found != nil {
			e := &file.Error{Location: v.found.Location(), Message: clockMessage}
			return nil, e.Bind(tree.Source)
		}
	}
	prog, err := expr.Compile(src, expr.Env(Facts{}), expr.AsBool(), expr.DisableBuiltin("now"), expr.MaxNodes(MaxExprNodes))
	var fe *file.Error
	if errors.As(err, &fe) {
		switch name, unknown := strings.CutPrefix(fe.Message, "unknown name "); {
		case strings.Contains(fe.Message, "exceeds maximum allowed nodes"):
			fe.Message = fmt.Sprintf("expression is over the limit of %d nodes", MaxExprNodes)
		case unknown:
			fe.Message += nameHint(name, sc)
		}
	}
	if err != nil {
		return nil, err
	}
	refuse := func(name, msg string) error {
		v := &identFinder{name: name}
		node := prog.Node()
		ast.Walk(&node, v)
		if v.found == nil {
			return nil
		}
		e := &file.Error{Location: v.found.Location(), Message: msg}
		return e.Bind(prog.Source())
	}
	if sc.stage {
		if err := refuse("stage", "stage is not known yet while stages are evaluated"); err != nil {
			return nil, err
		}
	}
	if !sc.event {
		if err := refuse("event", "event is known only in trigger.where and exit_when of a campaign started by an event trigger"); err != nil {
			return nil, err
		}
	}
	return prog, nil
}

// names are the names expressions can use, from the expr tags of Facts,
// less those the scope does not know.
func names(sc scope) []string {
	t := reflect.TypeFor[Facts]()
	var names []string
	for i := range t.NumField() {
		n := t.Field(i).Tag.Get("expr")
		if n == "" || (sc.stage && n == "stage") || (!sc.event && n == "event") {
			continue
		}
		names = append(names, n)
	}
	return names
}

// nameHint suggests the name closest to an unknown one or, when none is
// close, lists the names and how to read an attribute of that name.
func nameHint(name string, sc scope) string {
	known := names(sc)
	if h := suggest.Hint(name, known, func(s string) string { return s }); h != "" {
		return h
	}
	return fmt.Sprintf("; the names are %s, or attributes.%s for a customer attribute", strings.Join(known, ", "), name)
}

// callFinder finds a call of a function by name: now().
type callFinder struct {
	name  string
	found ast.Node
}

func (v *callFinder) Visit(node *ast.Node) {
	if c, ok := (*node).(*ast.CallNode); ok && v.found == nil {
		if id, ok := c.Callee.(*ast.IdentifierNode); ok && id.Value == v.name {
			v.found = id
		}
	}
	if b, ok := (*node).(*ast.BuiltinNode); ok && b.Name == v.name && v.found == nil {
		v.found = b
	}
}

type identFinder struct {
	name  string
	found ast.Node
}

func (v *identFinder) Visit(node *ast.Node) {
	if id, ok := (*node).(*ast.IdentifierNode); ok && id.Value == v.name && v.found == nil {
		v.found = id
	}
}

// compileError places an expr error in the YAML file: expr counts lines from
// 1 and columns from 0 within the expression.
func compileError(err error, key string, start campaign.Pos, at func(line, col int) campaign.Pos) campaign.Error {
	var fe *file.Error
	if errors.As(err, &fe) && fe.Line > 0 {
		return campaign.Error{Pos: at(fe.Line, fe.Column+1), Msg: key + ": " + firstLine(fe.Message)}
	}
	return campaign.Error{Pos: start, Msg: key + ": " + firstLine(err.Error())}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// Set returns the campaign set the rules were compiled from.
func (r *Rules) Set() *campaign.Set { return r.set }

// Stage returns the name of the first stage whose when is true for f; a
// stage without when matches everyone. It returns "" when no stage matches,
// which only happens when the last stage has a when. f.Stage should be
// empty and is left as is. An expression failing at run time returns an
// *EvalError.
func (r *Rules) Stage(f *Facts) (string, error) {
	for i := range r.stages {
		s := &r.stages[i]
		if s.prog == nil {
			return s.stage.Name, nil
		}
		ok, err := r.run(s.prog, f)
		if err != nil {
			return "", evalError(err, fmt.Sprintf("stage %q when", s.stage.Name), s.stage.WhenPos, s.stage.WhenAt)
		}
		if ok {
			return s.stage.Name, nil
		}
	}
	return "", nil
}

// Targets returns every campaign's target, sorted by campaign name,
// disabled campaigns included.
func (r *Rules) Targets() []*Target { return slices.Clone(r.targets) }

// Target returns the named campaign's target, or nil.
func (r *Rules) Target(name string) *Target {
	i, ok := slices.BinarySearchFunc(r.targets, name, func(t *Target, name string) int {
		return strings.Compare(t.Campaign.Name, name)
	})
	if !ok {
		return nil
	}
	return r.targets[i]
}

// Match reports whether c, with facts f at instant at and history h of
// this campaign, is in the campaign's audience. f.Stage must hold c's
// stage. h.Sends is the caller's count of this campaign's deliveries to c
// in every status but failed and skipped.
//
// The conditions, all of which must hold: the campaign is enabled; c is
// subscribed and not suppressed; f.Stage is one of the campaign's stages
// (any, when it lists none); min <= f.InactiveDays <= max for the bounds
// given; fewer than max_sends deliveries (or, for a journey, max_entries
// entries) unless 0; no unfinished journey of the campaign; no delivery
// (entry) within the cooldown before at (occurrence < at and at -
// occurrence < cooldown); and where is true. The where expression runs
// last, as the costliest check.
func (t *Target) Match(c *Customer, f *Facts, h History, at time.Time) (bool, error) {
	rule, err := t.Why(c, f, h, at)
	return rule == "" && err == nil, err
}

// Rules that keep a customer out of a campaign's audience, as Why names
// them.
const (
	RuleDisabled     = "disabled"
	RuleUnsubscribed = "unsubscribed"
	RuleSuppressed   = "suppressed"
	RuleStage        = "stage"
	RuleInactiveDays = "inactive_days"
	RuleMaxSends     = "max_sends"
	RuleMaxEntries   = "max_entries"
	RuleJourney      = "journey under way"
	RuleCooldown     = "cooldown"
	RuleWhere        = "where"
)

// Why returns the first rule of Match that keeps c out of the audience, or
// "" when c is in it; the rules are checked in the order Match documents.
func (t *Target) Why(c *Customer, f *Facts, h History, at time.Time) (string, error) {
	cp := t.Campaign
	switch {
	case !cp.Enabled:
		return RuleDisabled, nil
	case !c.Subscribed:
		return RuleUnsubscribed, nil
	case c.Suppressed:
		return RuleSuppressed, nil
	}
	if a := &cp.Audience; len(a.Stages) > 0 && !slices.Contains(a.Stages, f.Stage) {
		return RuleStage, nil
	}
	if m := cp.Audience.MinInactive; m != nil && f.InactiveDays < *m {
		return RuleInactiveDays, nil
	}
	if m := cp.Audience.MaxInactive; m != nil && f.InactiveDays > *m {
		return RuleInactiveDays, nil
	}
	if n := cp.Frequency.MaxSends; n > 0 && h.Sends >= n {
		return RuleMaxSends, nil
	}
	if n := cp.Frequency.MaxEntries; n > 0 && h.Sends >= n {
		return RuleMaxEntries, nil
	}
	if h.Active {
		return RuleJourney, nil
	}
	if last := h.LastOccurrence; last != nil && last.Before(at) && at.Sub(*last) < cp.Frequency.Cooldown {
		return RuleCooldown, nil
	}
	if t.where == nil {
		return "", nil
	}
	ok, err := run(t.vms, t.where, f)
	if err != nil {
		a := &cp.Audience
		return "", evalError(err, fmt.Sprintf("campaign %q audience.where", cp.Name), a.WherePos, a.WhereAt)
	}
	if !ok {
		return RuleWhere, nil
	}
	return "", nil
}

// TriggerWhere reports whether the event in f.Event passes the campaign's
// trigger.where (true when there is none).
func (t *Target) TriggerWhere(f *Facts) (bool, error) {
	if t.triggerWhere == nil {
		return true, nil
	}
	ok, err := run(t.vms, t.triggerWhere, f)
	if err != nil {
		tr := t.Campaign.Trigger
		return false, evalError(err, fmt.Sprintf("campaign %q trigger.where", t.Campaign.Name), tr.WherePos, tr.WhereAt)
	}
	return ok, nil
}

// ExitWhen reports whether the campaign's exit_when holds for f (false
// when there is none). For a triggered campaign f.Event is the event.
func (t *Target) ExitWhen(f *Facts) (bool, error) {
	if t.exitWhen == nil {
		return false, nil
	}
	ok, err := run(t.vms, t.exitWhen, f)
	if err != nil {
		c := t.Campaign
		return false, evalError(err, fmt.Sprintf("campaign %q exit_when", c.Name), c.ExitWhenPos, c.ExitWhenAt)
	}
	return ok, nil
}

// StepWhere reports whether step i (0-based) of a journey is to be sent to
// f's customer (true when the step has no where).
func (t *Target) StepWhere(i int, f *Facts) (bool, error) {
	if i >= len(t.steps) || t.steps[i] == nil {
		return true, nil
	}
	ok, err := run(t.vms, t.steps[i], f)
	if err != nil {
		s := &t.Campaign.Steps[i]
		return false, evalError(err, fmt.Sprintf("campaign %q steps[%d].where", t.Campaign.Name, i+1), s.WherePos, s.WhereAt)
	}
	return ok, nil
}

func (r *Rules) run(prog *vm.Program, f *Facts) (bool, error) { return run(r.vms, prog, f) }

// run evaluates prog on a pooled VM: a VM keeps its stack between runs,
// which saves allocations, but serves one goroutine at a time.
func run(pool *sync.Pool, prog *vm.Program, f *Facts) (bool, error) {
	m := pool.Get().(*vm.VM)
	out, err := m.Run(prog, f)
	pool.Put(m)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		// AsBool lets through expressions typed "any", such as an
		// attribute, which may turn out to be nil or a string.
		return false, fmt.Errorf("expected bool, got %s", describe(out))
	}
	return b, nil
}

func describe(v any) string {
	if v == nil {
		return "nil"
	}
	return fmt.Sprintf("%T %v", v, v)
}

func evalError(err error, what string, start campaign.Pos, at func(line, col int) campaign.Pos) *EvalError {
	e := &EvalError{Pos: start, What: what, Err: err}
	var fe *file.Error
	if errors.As(err, &fe) && fe.Line > 0 {
		e.Pos = at(fe.Line, fe.Column+1)
	}
	return e
}
