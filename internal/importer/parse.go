package importer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"nurture/internal/store"
)

// maxAmount bounds amounts to what numeric(16, 2) holds.
const maxAmount = 1e14

// object is a line decoded one level deep, with its problems so far.
type object struct {
	fields  map[string]json.RawMessage
	unknown []string // sorted
	reasons []reason
}

// reason is one problem of a line: the field it is about ("" for the
// line as a whole) and the text reported, which names the field itself.
type reason struct {
	field, text string
}

// message is the text without its leading "field: ", for reports that
// show the field apart.
func (r reason) message() string {
	if m, ok := strings.CutPrefix(r.text, r.field+": "); ok && r.field != "" {
		return m
	}
	return r.text
}

// decodeObject decodes line as a JSON object. A field whose value is null
// counts as absent. Fields not in known are problems.
func decodeObject(line []byte, known []string) (*object, bool) {
	line = bytes.TrimSpace(line)
	o := &object{}
	if !utf8.Valid(line) {
		o.reasons = append(o.reasons, reason{"", "not valid UTF-8"})
		return o, false
	}
	if len(line) == 0 || line[0] != '{' {
		o.reasons = append(o.reasons, reason{"", "not a JSON object"})
		return o, false
	}
	if err := json.Unmarshal(line, &o.fields); err != nil {
		o.reasons = append(o.reasons, reason{"", "invalid JSON: " + jsonError(err)})
		return o, false
	}
	// Unmarshal keeps the last of repeated keys; which one the sender
	// meant is anyone's guess.
	if path, key, ok := duplicateKey(line); ok {
		text := fmt.Sprintf("duplicate key %q", key)
		if path != "" {
			text = path + ": " + text
		}
		o.reasons = append(o.reasons, reason{path, text})
		return o, false
	}
	for k, v := range o.fields {
		if !slices.Contains(known, k) {
			o.unknown = append(o.unknown, k)
		} else if string(v) == "null" {
			delete(o.fields, k)
		}
	}
	slices.Sort(o.unknown)
	return o, true
}

// duplicateKey finds the first key repeated within one object of line,
// which must be valid JSON, at any depth. path locates the object:
// "" for the line itself, then keys and indexes such as attributes.tags[2].
// It scans the bytes without decoding them: every line goes through it.
func duplicateKey(line []byte) (path, key string, found bool) {
	var backing [32][]byte
	f := dupFinder{b: line, keys: backing[:0]}
	if !f.value() {
		return "", "", false
	}
	var b strings.Builder
	for i := len(f.path) - 1; i >= 0; i-- { // f.path is innermost first
		switch e := f.path[i].(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(e)
		case int:
			fmt.Fprintf(&b, "[%d]", e)
		}
	}
	return b.String(), f.key, true
}

// dupFinder scans valid JSON for a repeated key; once it finds one, it
// unwinds, collecting the path to its object.
type dupFinder struct {
	b    []byte
	i    int
	keys [][]byte // keys of the objects being scanned, outermost first
	key  string
	path []any // keys (string) and indexes (int), innermost first
}

func (f *dupFinder) peek() byte {
	for f.i < len(f.b) {
		switch c := f.b[f.i]; c {
		case ' ', '\t', '\r', '\n':
			f.i++
		default:
			return c
		}
	}
	return 0
}

// str skips a string and returns its content, decoded when it holds
// escapes (so "\u0069d" and "id" are the same key).
func (f *dupFinder) str() []byte {
	start := f.i
	escaped := false
	for f.i++; f.i < len(f.b); f.i++ {
		switch f.b[f.i] {
		case '\\':
			escaped = true
			f.i++
		case '"':
			f.i++
			raw := f.b[start:f.i]
			if !escaped {
				return raw[1 : len(raw)-1]
			}
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return raw
			}
			return []byte(s)
		}
	}
	return f.b[start:]
}

// value scans one value and reports whether it holds a repeated key.
func (f *dupFinder) value() bool {
	switch f.peek() {
	case '{':
		f.i++
		base := len(f.keys)
		var many map[string]bool // past 32 keys, a linear search is too slow
		defer func() { f.keys = f.keys[:base] }()
		for {
			switch f.peek() {
			case '}', 0:
				f.i++
				return false
			case ',':
				f.i++
				f.peek()
			}
			k := f.str()
			dup := false
			if many != nil {
				dup = many[string(k)]
				many[string(k)] = true
			} else {
				for _, seen := range f.keys[base:] {
					dup = dup || bytes.Equal(seen, k)
				}
				f.keys = append(f.keys, k)
				if len(f.keys)-base > 32 {
					many = map[string]bool{}
					for _, seen := range f.keys[base:] {
						many[string(seen)] = true
					}
				}
			}
			if dup {
				f.key = string(k)
				return true
			}
			f.peek()
			f.i++ // ':'
			if f.value() {
				f.path = append(f.path, string(k))
				return true
			}
		}
	case '[':
		f.i++
		for n := 0; ; n++ {
			switch f.peek() {
			case ']', 0:
				f.i++
				return false
			case ',':
				f.i++
			}
			if f.value() {
				f.path = append(f.path, n)
				return true
			}
		}
	case '"':
		f.str()
	default: // number, true, false or null
		for f.i < len(f.b) && !endsScalar(f.b[f.i]) {
			f.i++
		}
	}
	return false
}

func endsScalar(c byte) bool {
	switch c {
	case ',', ']', '}', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

func jsonError(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("%s (at byte %d)", syn.Error(), syn.Offset)
	}
	return err.Error()
}

// done returns every problem: those of known fields, in the order they
// were checked, then unknown fields.
func (o *object) done() []reason {
	for _, k := range o.unknown {
		o.problem(k, "unknown field %q", k)
	}
	return o.reasons
}

func (o *object) problem(field, format string, args ...any) {
	o.reasons = append(o.reasons, reason{field, fmt.Sprintf(format, args...)})
}

// str reads an optional string field.
func (o *object) str(name string) (string, bool) {
	raw, ok := o.fields[name]
	if !ok {
		return "", false
	}
	s, plain := plainString(raw)
	if !plain {
		if err := json.Unmarshal(raw, &s); err != nil {
			o.problem(name, "%s: must be a string", name)
			return "", false
		}
	}
	if strings.ContainsRune(s, 0) {
		o.problem(name, "%s: must not contain NUL characters", name)
		return "", false
	}
	return s, true
}

// required reads a string field that must be present and not blank.
func (o *object) required(name string) string {
	if _, ok := o.fields[name]; !ok {
		o.problem(name, "missing %q", name)
		return ""
	}
	s, ok := o.str(name)
	if ok && strings.TrimSpace(s) == "" {
		o.problem(name, "%s: must not be empty", name)
	}
	return s
}

// time reads a time field in RFC 3339; the zero time when absent.
func (o *object) time(name string, required bool) time.Time {
	if _, ok := o.fields[name]; !ok {
		if required {
			o.problem(name, "missing %q", name)
		}
		return time.Time{}
	}
	s, ok := o.str(name)
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		o.problem(name, "%s: %q is not an RFC 3339 time", name, s)
		return time.Time{}
	}
	return t
}

// jsonObject reads a field that must be a JSON object; nil when absent.
// It returns the object re-encoded (keys sorted, numbers as written), so
// that what is stored is exactly what the planner decodes: no NUL
// characters or lone surrogates, which PostgreSQL refuses, and no number
// beyond float64. An object without escapes and with numbers in range
// can hold neither, and is returned as it is.
func (o *object) jsonObject(name string) []byte {
	raw, ok := o.fields[name]
	if !ok {
		return nil
	}
	if plainObject(raw) {
		return raw
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if raw = bytes.TrimSpace(raw); len(raw) == 0 || raw[0] != '{' || d.Decode(&m) != nil {
		o.problem(name, "%s: must be a JSON object", name)
		return nil
	}
	if reason := checkJSON(m); reason != "" {
		o.problem(name, "%s: %s", name, reason)
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		o.problem(name, "%s: %v", name, err)
		return nil
	}
	return b
}

// plainString returns the content of raw, a valid JSON value, when it is
// a string without escapes: then the bytes between the quotes are the
// string itself.
func plainString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || bytes.IndexByte(raw, '\\') >= 0 {
		return "", false
	}
	return string(raw[1 : len(raw)-1]), true
}

// plainObject reports whether raw, a valid JSON value, is an object that
// jsonObject may keep as it is: no escapes in its strings (so no NUL
// character or lone surrogate), and every number within float64. It
// scans the bytes: every line's properties or attributes go through it.
func plainObject(raw []byte) bool {
	if len(raw) == 0 || raw[0] != '{' || bytes.IndexByte(raw, '\\') >= 0 {
		return false
	}
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '"': // no escapes: the next quote ends the string
			i += 1 + bytes.IndexByte(raw[i+1:], '"')
		case c == '-' || c >= '0' && c <= '9':
			j := i
			for j < len(raw) && !endsScalar(raw[j]) {
				j++
			}
			if checkJSON(json.Number(raw[i:j])) != "" {
				return false
			}
			i = j - 1
		}
	}
	return true
}

// checkJSON explains what in v could not be stored or read back.
func checkJSON(v any) string {
	switch v := v.(type) {
	case string:
		if strings.ContainsRune(v, 0) {
			return "strings must not contain NUL characters"
		}
	case json.Number:
		if f, err := strconv.ParseFloat(string(v), 64); err != nil || math.IsInf(f, 0) {
			return fmt.Sprintf("number %s is out of range", v)
		}
	case []any:
		for _, e := range v {
			if r := checkJSON(e); r != "" {
				return r
			}
		}
	case map[string]any:
		for k, e := range v {
			if r := checkJSON(k); r != "" {
				return r
			}
			if r := checkJSON(e); r != "" {
				return r
			}
		}
	}
	return ""
}

// customerFields are the fields of a customer line, in the order problems
// are reported.
var customerFields = []string{"id", "email", "first_name", "timezone", "subscribed", "created_at", "attributes"}

// customerParser parses customer lines, remembering the time zones it has
// checked: loading one reads the zone database.
type customerParser struct {
	zones map[string]bool
}

func newCustomerParser() *customerParser {
	return &customerParser{zones: map[string]bool{"UTC": true}}
}

func (p *customerParser) parse(line []byte) (store.CustomerRecord, []reason) {
	o, ok := decodeObject(line, customerFields)
	if !ok {
		return store.CustomerRecord{}, o.reasons
	}
	var c store.CustomerRecord
	c.ID = o.required("id")
	c.Email = o.email("email")
	c.FirstName, _ = o.str("first_name")
	if tz, ok := o.str("timezone"); ok && tz != "" {
		if !p.knownZone(tz) {
			o.problem("timezone", "timezone: unknown time zone %q", tz)
		}
		c.Timezone = tz
	}
	c.Subscribed = true
	if raw, ok := o.fields["subscribed"]; ok {
		if err := json.Unmarshal(raw, &c.Subscribed); err != nil {
			o.problem("subscribed", "subscribed: must be true or false")
		}
	}
	c.CreatedAt = o.time("created_at", false)
	c.Attributes = o.jsonObject("attributes")
	return c, o.done()
}

func (p *customerParser) knownZone(name string) bool {
	known, seen := p.zones[name]
	if !seen {
		// "Local" is the importing machine's zone, not a zone name.
		_, err := time.LoadLocation(name)
		known = err == nil && name != "Local"
		p.zones[name] = known
	}
	return known
}

// email reads a required email field that must be a bare address.
func (o *object) email(name string) string {
	if _, ok := o.fields[name]; !ok {
		o.problem(name, "missing %q", name)
		return ""
	}
	s, ok := o.str(name)
	if !ok {
		return ""
	}
	addr, err := mail.ParseAddress(s)
	switch {
	case err != nil:
		o.problem(name, "%s: %q is not a valid address", name, s)
	case addr.Address != s:
		o.problem(name, "%s: %q is not a bare address (want %q)", name, s, addr.Address)
	}
	return s
}

// eventFields are the fields of an event line, in the order problems are
// reported.
var eventFields = []string{"id", "customer_id", "type", "occurred_at", "amount", "properties"}

// eventParser parses event lines.
type eventParser struct {
	latest time.Time // occurred_at after this is a bad line
}

func (p eventParser) parse(line []byte) (store.EventRecord, []reason) {
	o, ok := decodeObject(line, eventFields)
	if !ok {
		return store.EventRecord{}, o.reasons
	}
	var e store.EventRecord
	if id, ok := o.str("id"); ok {
		if strings.TrimSpace(id) == "" {
			o.problem("id", "id: must not be empty")
		}
		e.ID = id
	}
	e.CustomerID = o.required("customer_id")
	e.Type = o.required("type")
	e.OccurredAt = o.time("occurred_at", true)
	if e.OccurredAt.After(p.latest) {
		o.problem("occurred_at", "occurred_at: %q is more than %g hours in the future (the import's clock says %s)",
			e.OccurredAt.Format(time.RFC3339), MaxFuture.Hours(), p.latest.Add(-MaxFuture).UTC().Format(time.RFC3339))
	}
	if raw, ok := o.fields["amount"]; ok {
		var a float64
		if err := json.Unmarshal(raw, &a); err != nil {
			o.problem("amount", "amount: must be a number")
		} else if math.Abs(a) >= maxAmount {
			o.problem("amount", "amount: %s is out of range", raw)
		} else {
			e.Amount = &a
		}
	}
	e.Properties = o.jsonObject("properties")
	return e, o.done()
}
