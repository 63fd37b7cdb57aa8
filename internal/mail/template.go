package mail

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	texttemplate "text/template"
	"text/template/parse"
	"time"

	"nurture/internal/audience"
	"nurture/internal/suggest"
)

// Template file suffixes. A template NAME is made of NAME.subject.tmpl,
// NAME.html.tmpl and, optionally, NAME.txt.tmpl.
const (
	subjectSuffix = ".subject.tmpl"
	htmlSuffix    = ".html.tmpl"
	textSuffix    = ".txt.tmpl"
)

// ErrUnknownTemplate is returned by Render for a name that was not loaded.
var ErrUnknownTemplate = errors.New("unknown template")

// MaxTemplateFileSize is the largest template file LoadTemplates reads:
// 1 MiB, far more than any email needs.
const MaxTemplateFileSize = 1 << 20

// MaxRenderedSize bounds one rendered email, subject, HTML and text
// together: 2 MiB. Render stops executing the template as soon as its
// output would pass it, so a template that loops to a huge output costs
// 2 MiB per delivery in flight, not what the loop would have made. (Real
// emails are much smaller: Gmail clips HTML bodies over about 102 KB.)
const MaxRenderedSize = 2 << 20

// ErrTooLarge is returned, wrapped, by Render for an email whose rendering
// would be over MaxRenderedSize.
var ErrTooLarge = errors.New("rendered message is over the 2 MiB limit")

var templateName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// Data is what templates are executed with: the customer's facts
// ({{.FirstName}}, {{.OrdersCount}}, {{.Stage}}, {{.Attributes.plan}}),
// the campaign name and the evaluation instant. The facts are fields of
// Data itself, as in audience.Facts, rather than an embedded Facts: a
// template looks each field up by name at every execution, and a name
// found only in an embedded struct takes reflect's slow search, which
// allocates (NewData copies them).
type Data struct {
	ID                string
	Email             string
	FirstName         string
	Timezone          string
	Subscribed        bool
	OrdersCount       int
	TotalSpent        float64
	InactiveDays      int
	DaysSinceSignup   int
	DaysSincePurchase *int // nil without a purchase
	Attributes        map[string]any
	Stage             string
	CreatedAt         time.Time
	LastActiveAt      time.Time
	FirstPurchaseAt   *time.Time // nil without a purchase
	LastPurchaseAt    *time.Time // nil without a purchase
	// Event is the triggering event where there is one.
	Event    *audience.Event
	Campaign string
	// Now is the evaluation instant, never the wall clock.
	Now time.Time
	// UnsubscribeURL is the customer's one-click unsubscribe link, empty
	// when none is configured (UNSUBSCRIBE_URL).
	UnsubscribeURL string
}

// NewData returns the data of an email to the customer of f, for campaign.
func NewData(f *audience.Facts, campaign string) *Data {
	return &Data{
		ID: f.ID, Email: f.Email, FirstName: f.FirstName, Timezone: f.Timezone, Subscribed: f.Subscribed,
		OrdersCount: f.OrdersCount, TotalSpent: f.TotalSpent, InactiveDays: f.InactiveDays,
		DaysSinceSignup: f.DaysSinceSignup, DaysSincePurchase: f.DaysSincePurchase, Attributes: f.Attributes,
		Stage: f.Stage, CreatedAt: f.CreatedAt, LastActiveAt: f.LastActiveAt,
		FirstPurchaseAt: f.FirstPurchaseAt, LastPurchaseAt: f.LastPurchaseAt, Event: f.Event,
		Campaign: campaign, Now: f.Now,
	}
}

// SampleData returns a representative customer, used by `nurture lint` to
// test-render every template. Its only attribute is "plan", so templates
// that read other attributes must go through attr with a fallback, as real
// customers may lack them. Each call returns a fresh value.
func SampleData() *Data {
	daysSincePurchase := 12
	d := NewData(&audience.Facts{
		ID:                "sample-1",
		Email:             "ann@example.com",
		FirstName:         "Ann",
		Timezone:          "Europe/Paris",
		Subscribed:        true,
		OrdersCount:       6,
		TotalSpent:        512.4,
		InactiveDays:      12,
		DaysSinceSignup:   400,
		DaysSincePurchase: &daysSincePurchase,
		Attributes:        map[string]any{"plan": "pro"},
		Stage:             "loyal",
		Now:               time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC),
	}, "sample")
	d.UnsubscribeURL = "https://mail.example.com/unsubscribe?c=sample-1&t=token"
	return d
}

// TemplateError is one problem in one template file. Line is 0 when the
// problem concerns the whole file; Col is 0 when Go's template package does
// not report one (parse errors carry a line only).
type TemplateError struct {
	File string
	Line int
	Col  int
	Msg  string
}

// Error formats e as FILE:LINE:COL: MSG, FILE:LINE: MSG or FILE: MSG,
// depending on what is known.
func (e TemplateError) Error() string {
	switch {
	case e.Line > 0 && e.Col > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// TemplateErrors is every problem found by LoadTemplates, sorted by file and
// line.
type TemplateErrors []TemplateError

// Error returns one line per problem.
func (es TemplateErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find each TemplateError.
func (es TemplateErrors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// Rendered is one rendered email. Text is empty when the template has no
// NAME.txt.tmpl; the message is then sent as HTML only.
type Rendered struct {
	Subject string
	HTML    string
	Text    string
}

type tmpl struct {
	subject     *texttemplate.Template
	subjectFile string
	html        *htmltemplate.Template
	htmlFile    string
	text        *texttemplate.Template // nil without NAME.txt.tmpl
	textFile    string
}

// Templates is a loaded, immutable set of templates, safe for concurrent
// use.
type Templates struct {
	byName map[string]*tmpl
	names  []string
	bufs   sync.Pool
}

// LoadTemplates parses every template in dir. Files that do not end in
// .tmpl are ignored. All problems are reported at once as TemplateErrors;
// other errors (dir unreadable) are returned as is.
func LoadTemplates(dir string) (*Templates, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load templates: %w", err)
	}
	ts := &Templates{byName: map[string]*tmpl{}}
	ts.bufs.New = func() any { return new(bytes.Buffer) }
	var errs TemplateErrors
	for _, e := range entries {
		base := e.Name()
		if e.IsDir() || !strings.HasSuffix(base, ".tmpl") {
			continue
		}
		file := filepath.Join(dir, base)
		name, kind := splitTemplateFile(base)
		if kind == "" {
			errs = append(errs, TemplateError{File: file, Msg: "unknown template file, want NAME.subject.tmpl, NAME.html.tmpl or NAME.txt.tmpl"})
			continue
		}
		if !templateName.MatchString(name) {
			errs = append(errs, TemplateError{File: file, Msg: fmt.Sprintf("invalid template name %q, want [a-z0-9][a-z0-9_-]*", name)})
			continue
		}
		t := ts.byName[name]
		if t == nil {
			t = &tmpl{}
			ts.byName[name] = t
		}
		switch kind {
		case subjectSuffix:
			t.subjectFile = file
		case textSuffix:
			t.textFile = file
		case htmlSuffix:
			t.htmlFile = file
		}
		src, err := readTemplateFile(file)
		if err != nil {
			errs = append(errs, TemplateError{File: file, Msg: err.Error()})
			continue
		}
		switch kind {
		case subjectSuffix:
			t.subject, err = texttemplate.New(base).Option("missingkey=error").Funcs(textFuncs).Parse(string(src))
		case textSuffix:
			t.text, err = texttemplate.New(base).Option("missingkey=error").Funcs(textFuncs).Parse(string(src))
		case htmlSuffix:
			t.html, err = htmltemplate.New(base).Option("missingkey=error").Funcs(htmlFuncs).Parse(string(src))
			if err == nil {
				err = escapeNow(t.html)
			}
		}
		if err != nil {
			errs = append(errs, templateError(file, base, err))
		}
	}
	for name, t := range ts.byName {
		switch {
		case t.subjectFile == "" && t.htmlFile == "":
			errs = append(errs, TemplateError{File: t.textFile, Msg: fmt.Sprintf("no matching %s%s and %s%s", name, subjectSuffix, name, htmlSuffix)})
		case t.subjectFile == "":
			errs = append(errs, TemplateError{File: t.htmlFile, Msg: fmt.Sprintf("no matching %s%s", name, subjectSuffix)})
		case t.htmlFile == "":
			errs = append(errs, TemplateError{File: t.subjectFile, Msg: fmt.Sprintf("no matching %s%s", name, htmlSuffix)})
		}
		ts.names = append(ts.names, name)
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b TemplateError) int {
			return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col), cmp.Compare(a.Msg, b.Msg))
		})
		return nil, errs
	}
	slices.Sort(ts.names)
	return ts, nil
}

// readTemplateFile reads a file of at most MaxTemplateFileSize bytes,
// without reading a larger one.
func readTemplateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	var src []byte
	if size <= MaxTemplateFileSize {
		// Limited too: the file may have grown since Stat.
		src, err = io.ReadAll(io.LimitReader(f, MaxTemplateFileSize+1))
		if err != nil {
			return nil, err
		}
		size = int64(len(src))
	}
	if size > MaxTemplateFileSize {
		return nil, fmt.Errorf("file is %d bytes; the limit is %d MiB", size, MaxTemplateFileSize>>20)
	}
	return src, nil
}

func splitTemplateFile(base string) (name, kind string) {
	for _, suffix := range []string{subjectSuffix, htmlSuffix, textSuffix} {
		if n, ok := strings.CutSuffix(base, suffix); ok {
			return n, suffix
		}
	}
	return "", ""
}

// escapeNow makes html/template run its contextual escaper, which it would
// otherwise do lazily on the first Execute, so that escaping problems are
// load errors rather than send-time surprises. Execution errors (the data is
// nil) are expected and ignored.
func escapeNow(t *htmltemplate.Template) error {
	err := t.Execute(io.Discard, nil)
	var escErr *htmltemplate.Error
	if errors.As(err, &escErr) {
		return escErr
	}
	return nil
}

// execError matches Go template errors: "template: NAME:LINE[:COL]: ..." with
// an optional `executing "NAME" at ` before the message.
var execError = regexp.MustCompile(`^template: [^:]*:(\d+)(?::(\d+))?: (?:executing "[^"]*" at )?(.*)$`)

// templateError turns an error from text/template or html/template into a
// clean one-line TemplateError naming file.
func templateError(file, base string, err error) TemplateError {
	te := TemplateError{File: file}
	var escErr *htmltemplate.Error
	if errors.As(err, &escErr) {
		te.Line = escErr.Line
		te.Msg = escErr.Description
		if escErr.Node != nil {
			loc, _ := (*parse.Tree)(nil).ErrorContext(escErr.Node)
			te.Line, te.Col = lineCol(strings.TrimPrefix(loc, base+":"))
		}
		// Some descriptions end with dumps of the escaper's internal state.
		te.Msg, _, _ = strings.Cut(te.Msg, ": {state")
	} else if m := execError.FindStringSubmatch(err.Error()); m != nil {
		te.Line, _ = strconv.Atoi(m[1])
		if m[2] != "" {
			te.Col, _ = strconv.Atoi(m[2])
			te.Col++ // Go counts columns from 0
		}
		te.Msg = plainTemplateMessage(m[3])
	} else {
		te.Msg = err.Error()
	}
	te.Msg = strings.Join(strings.Fields(te.Msg), " ")
	return te
}

// lineCol reads Go's "LINE:COL" location, whose columns count from 0, as
// a 1-based line and column.
func lineCol(loc string) (line, col int) {
	l, c, _ := strings.Cut(loc, ":")
	line, _ = strconv.Atoi(l)
	if col, _ = strconv.Atoi(c); c != "" {
		col++
	}
	return line, col
}

var (
	// "<.Firstname>: can't evaluate field Firstname in type *mail.Data"
	noField = regexp.MustCompile(`^<[^>]*>: can't evaluate field (\S+) in type (.+)$`)
	// "<.Attributes.coupon>: map has no entry for key "coupon""
	noAttribute = regexp.MustCompile(`^<\.Attributes\.[^>]*>: map has no entry for key "(.*)"$`)
	// `function "defualt" not defined`
	noFunction = regexp.MustCompile(`^function "(.*)" not defined$`)
)

// plainTemplateMessage rewrites Go's messages about a name that does not
// exist, which speak of Go types, in the names template authors write.
func plainTemplateMessage(msg string) string {
	if m := noField.FindStringSubmatch(msg); m != nil {
		if m[2] != "*mail.Data" {
			return fmt.Sprintf("no field %s in type %s", m[1], m[2])
		}
		fields := dataFields()
		if h := suggest.Hint(m[1], fields, func(s string) string { return s }); h != "" {
			return "no field " + m[1] + h
		}
		return fmt.Sprintf(`no field %s; the fields are %s, and for a customer attribute write {{attr . %q "fallback"}}`,
			m[1], strings.Join(fields, ", "), m[1])
	}
	if m := noAttribute.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf(`the customer has no attribute %q; write {{attr . %q "fallback"}} for an attribute some customers lack`, m[1], m[1])
	}
	if m := noFunction.FindStringSubmatch(msg); m != nil {
		names := slices.Sorted(maps.Keys(funcs))
		builtin := []string{"and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf", "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne"}
		if h := suggest.Hint(m[1], append(names, builtin...), func(s string) string { return s }); h != "" {
			return msg + h
		}
		return msg + "; nurture's functions are " + strings.Join(names, ", ")
	}
	return msg
}

// dataFields are the names templates can write after a dot: {{.FirstName}}.
func dataFields() []string {
	var names []string
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Data]()) {
		if f.IsExported() && !f.Anonymous {
			names = append(names, f.Name)
		}
	}
	return names
}

// Names returns the template names, sorted.
func (ts *Templates) Names() []string {
	return slices.Clone(ts.names)
}

// Has reports whether a template called name was loaded.
func (ts *Templates) Has(name string) bool {
	_, ok := ts.byName[name]
	return ok
}

// maxPooledBuffer keeps one unusually large email from pinning memory.
const maxPooledBuffer = 256 << 10

// Render executes template name with d. Errors are TemplateError values
// naming the file, or wrap ErrUnknownTemplate.
func (ts *Templates) Render(name string, d *Data) (*Rendered, error) {
	t := ts.byName[name]
	if t == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownTemplate, name)
	}
	buf := ts.bufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledBuffer {
			buf.Reset()
			ts.bufs.Put(buf)
		}
	}()

	var r Rendered
	w := &limitWriter{buf: buf, left: MaxRenderedSize}
	buf.Reset()
	if err := t.subject.Execute(w, d); err != nil {
		return nil, renderError(t.subjectFile, err)
	}
	r.Subject = strings.TrimSpace(buf.String())
	switch {
	case r.Subject == "":
		return nil, TemplateError{File: t.subjectFile, Msg: "subject is empty"}
	case strings.ContainsAny(r.Subject, "\r\n"):
		return nil, TemplateError{File: t.subjectFile, Msg: "subject must be a single line"}
	}

	buf.Reset()
	if err := t.html.Execute(w, d); err != nil {
		return nil, renderError(t.htmlFile, err)
	}
	r.HTML = buf.String()

	if t.text != nil {
		buf.Reset()
		if err := t.text.Execute(w, d); err != nil {
			return nil, renderError(t.textFile, err)
		}
		r.Text = strings.TrimSpace(buf.String()) + "\n"
	}
	return &r, nil
}

// renderError turns an error from executing file into a TemplateError,
// except ErrTooLarge, which it wraps with the file name.
func renderError(file string, err error) error {
	if errors.Is(err, ErrTooLarge) {
		return fmt.Errorf("%s: %w", file, err)
	}
	return templateError(file, filepath.Base(file), err)
}

// limitWriter writes to buf until left bytes are used up, then fails with
// ErrTooLarge, which ends the template's execution.
type limitWriter struct {
	buf  *bytes.Buffer
	left int
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		w.left = 0
		return 0, ErrTooLarge
	}
	w.left -= len(p)
	return w.buf.Write(p)
}
