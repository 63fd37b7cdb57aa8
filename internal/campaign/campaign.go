// Package campaign parses and validates campaign and lifecycle YAML files.
// It is pure: it reads files and nothing else.
//
// Decoding is strict: unknown keys, values of the wrong type and missing
// required keys are errors, each reported at its file, line and column, and
// every problem in every file is reported at once. A key whose value is
// null (written "key:" or "key: ~") counts as absent. YAML anchors, aliases,
// merge keys and tags are refused. Expressions (stage "when", campaign
// "where") are kept as text with their positions; package audience
// compiles them.
package campaign

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
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
