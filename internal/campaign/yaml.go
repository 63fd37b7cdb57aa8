package campaign

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"nurture/internal/suggest"
)

// decoder walks the YAML syntax tree of one file by hand rather than through
// reflection, so that every problem gets the position of the exact key or
// value at fault and decoding goes on after the first one.
type decoder struct {
	file string
	errs Errors
}

func (d *decoder) errorf(p Pos, format string, args ...any) {
	d.errs = append(d.errs, Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) tokPos(tk *token.Token) Pos {
	if tk == nil || tk.Position == nil {
		return Pos{File: d.file, Line: 1, Col: 1}
	}
	return Pos{File: d.file, Line: max(tk.Position.Line, 1), Col: max(tk.Position.Column, 1)}
}

// pos is where a node starts as a reader sees it: a block mapping's token is
// the colon after its first key, so use the key instead.
func (d *decoder) pos(n ast.Node) Pos {
	if _, ok := n.(invalid); ok || n == nil {
		return Pos{File: d.file, Line: 1, Col: 1}
	}
	if m, ok := n.(*ast.MappingNode); ok && !m.IsFlowStyle && len(m.Values) > 0 {
		return d.pos(m.Values[0].Key)
	}
	if mv, ok := n.(*ast.MappingValueNode); ok {
		return d.pos(mv.Key)
	}
	if l, ok := n.(*ast.LiteralNode); ok {
		return d.tokPos(l.Start)
	}
	return d.tokPos(n.GetToken())
}

// document parses src and returns the body of its only document; nil when
// the file is empty or unusable, with the reason recorded.
func (d *decoder) document(src []byte) ast.Node {
	// Duplicate keys are reported by mapping, with every other error,
	// instead of stopping the parse.
	f, err := parser.ParseBytes(src, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		var yerr yaml.Error
		if errors.As(err, &yerr) {
			p, msg := d.tokPos(yerr.GetToken()), yerr.GetMessage()
			if line, col, plain, ok := plainSyntax(src, msg, p.Line, p.Col); ok {
				p.Line, p.Col, msg = line, col, plain
			}
			// A tab in a message would read as blank space.
			msg = strings.ReplaceAll(msg, "\t", `\t`)
			d.errorf(p, "%s", oneLine(msg))
		} else {
			d.errorf(Pos{File: d.file, Line: 1, Col: 1}, "%s", oneLine(err.Error()))
		}
		return nil
	}
	var body ast.Node
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if body != nil {
			d.errorf(d.pos(doc.Body), "a file holds one YAML document; found a second one")
			break
		}
		body = doc.Body
	}
	if body == nil {
		d.errorf(Pos{File: d.file, Line: 1, Col: 1}, "file is empty")
	}
	return body
}

// field is one key of a mapping.
type field struct {
	key   Pos
	value ast.Node // nil when the value is null: treated as absent
}

// mapping checks that n is a mapping whose keys are all in keys and returns
// the fields present. path names n in messages ("" for the document).
func (d *decoder) mapping(n ast.Node, path string, keys ...string) (map[string]field, bool) {
	var values []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode: // the parser's form for some one-key mappings
		values = []*ast.MappingValueNode{m}
	default:
		d.expected(n, path, "a mapping")
		return nil, false
	}
	fields := make(map[string]field, len(values))
	for _, mv := range values {
		kpos := d.pos(mv.Key)
		name, ok := keyName(mv.Key)
		switch {
		case mv.Key.Type() == ast.MergeKeyType:
			d.errorf(kpos, "merge keys (<<) are not supported")
			continue
		case !ok:
			d.errorf(kpos, "unsupported key %s", describe(mv.Key))
			continue
		case !slices.Contains(keys, name):
			d.errorf(kpos, "unknown key %q%s", name, keyHint(name, keys))
			continue
		}
		if _, dup := fields[name]; dup {
			d.errorf(kpos, "duplicate key %q", name)
			continue
		}
		v := d.value(mv.Value)
		if _, null := v.(*ast.NullNode); null {
			v = nil
		}
		fields[name] = field{key: kpos, value: v}
	}
	return fields, true
}

// keyHint suggests the allowed key closest to name, or lists them all.
func keyHint(name string, keys []string) string {
	if h := suggest.Hint(name, keys, strconv.Quote); h != "" {
		return h
	}
	if len(keys) == 1 {
		return "; the only key here is " + keys[0]
	}
	return "; the keys here are " + strings.Join(keys, ", ")
}

func keyName(n ast.MapKeyNode) (string, bool) {
	if k, ok := n.(*ast.MappingKeyNode); ok { // "? key" form
		s, ok := k.Value.(*ast.StringNode)
		if !ok {
			return "", false
		}
		return s.Value, true
	}
	switch k := n.(type) {
	case *ast.StringNode:
		return k.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NullNode:
		// Reported as unknown keys under their spelling.
		return n.GetToken().Value, true
	}
	return "", false
}

// value returns n, or invalid when it cannot be used. Anchors, aliases and tags would
// let a value mean something other than what is written where it stands;
// campaign files are small enough to do without them.
func (d *decoder) value(n ast.Node) ast.Node {
	switch n.(type) {
	case *ast.AnchorNode, *ast.AliasNode, *ast.TagNode:
		d.errorf(d.pos(n), "YAML anchors, aliases and tags are not supported")
		return invalid{}
	}
	return n
}

// invalid stands for a value already reported as wrong, so that callers do
// not also report it as missing or of the wrong type.
type invalid struct{ ast.Node }

func (d *decoder) expected(n ast.Node, path, what string) {
	if _, ok := n.(invalid); ok {
		return
	}
	d.errorf(d.pos(n), "%sexpected %s, got %s", prefix(path), what, describe(n))
}

func prefix(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}

// describe spells a value for "expected X, got Y" messages.
func describe(n ast.Node) string {
	switch v := n.(type) {
	case nil, *ast.NullNode:
		return "nothing"
	case *ast.StringNode:
		return fmt.Sprintf("%q", abbrev(v.Value))
	case *ast.LiteralNode:
		return fmt.Sprintf("%q", abbrev(v.Value.Value))
	case *ast.MappingNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return v.GetToken().Value
	}
	return n.Type().String()
}

func abbrev(s string) string {
	const limit = 40
	if r := []rune(s); len(r) > limit {
		return string(r[:limit]) + "…"
	}
	return s
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// text is a string value with where its first character is.
type text struct {
	s      string
	pos    Pos
	folded bool // see exprAt
}

// str reads a scalar as text. Numbers and booleans count as their spelling,
// as YAML decoders do for string fields: "template: 404" means "404".
func (d *decoder) str(n ast.Node, path string) (text, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		t := text{s: v.Value, pos: d.tokPos(v.Token)}
		if tt := v.Token.Type; tt == token.SingleQuoteType || tt == token.DoubleQuoteType {
			t.pos.Col++
		}
		t.folded = strings.Contains(strings.TrimSpace(v.Token.Origin), "\n")
		return t, true
	case *ast.LiteralNode:
		return d.block(v), true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return text{s: v.GetToken().Value, pos: d.pos(v)}, true
	}
	d.expected(n, path, "a string")
	return text{}, false
}

// block reads a "|" or ">" block scalar. Its text starts on the first
// non-blank line after the indicator, at that line's indentation.
func (d *decoder) block(l *ast.LiteralNode) text {
	start := d.tokPos(l.Start)
	t := text{s: l.Value.Value, pos: start, folded: l.Start.Type == token.FoldedType}
	origin := l.Value.Token.Origin
	for i, line := range strings.Split(origin, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		t.pos.Line = start.Line + 1 + i
		t.pos.Col = 1 + len(line) - len(strings.TrimLeft(line, " "))
		break
	}
	return t
}

func (d *decoder) boolean(n ast.Node, path string) (bool, bool) {
	if b, ok := n.(*ast.BoolNode); ok {
		return b.Value, true
	}
	d.expected(n, path, "true or false")
	return false, false
}

func (d *decoder) count(n ast.Node, path string) (int, bool) {
	if i, ok := n.(*ast.IntegerNode); ok {
		switch v := i.Value.(type) {
		case int64:
			if v >= 0 && v <= math.MaxInt32 {
				return int(v), true
			}
		case uint64:
			if v <= math.MaxInt32 {
				return int(v), true
			}
		}
	}
	d.expected(n, path, "a non-negative integer")
	return 0, false
}

func (d *decoder) list(n ast.Node, path, what string) ([]ast.Node, bool) {
	s, ok := n.(*ast.SequenceNode)
	if !ok {
		d.expected(n, path, what)
		return nil, false
	}
	items := make([]ast.Node, len(s.Values))
	for i, v := range s.Values {
		items[i] = d.value(v)
	}
	return items, true
}
