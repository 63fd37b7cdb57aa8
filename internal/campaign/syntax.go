package campaign

import (
	"fmt"
	"regexp"
	"strings"
)

// The YAML parser's messages speak of tokens and contexts. plainSyntax
// turns the ones that typical mistakes cause (bad indentation, tabs, a
// missing colon, an unclosed quote or bracket) into what to fix, at the
// line at fault. The parser often notices a mistake a line late, or early:
// "mapping value is not allowed" points at the value above a line that is
// indented too far, so plainSyntax looks at the source around the token.

var reservedChar = regexp.MustCompile(`^'(.)' is a reserved character`)

// source is a file's lines, for looking around a parser error.
type source []string

// line returns line n (1-based), or "" beyond the file.
func (s source) line(n int) string {
	if n < 1 || n > len(s) {
		return ""
	}
	return strings.TrimRight(s[n-1], "\r")
}

// blank reports whether a line holds nothing, or only a comment.
func blank(l string) bool {
	t := strings.TrimLeft(l, " \t")
	return t == "" || strings.HasPrefix(t, "#")
}

// indent is the 1-based column of a line's first character other than a
// space.
func indent(l string) int { return 1 + len(l) - len(strings.TrimLeft(l, " ")) }

// keyCol is the 1-based column where a line's key starts: after its
// indentation and any "- " list markers.
func keyCol(l string) int {
	col := indent(l)
	rest := l[col-1:]
	for strings.HasPrefix(rest, "- ") {
		t := strings.TrimLeft(rest[2:], " ")
		col += len(rest) - len(t)
		rest = t
	}
	return col
}

// prevLine is the number of the last line before n that is not blank, or 0.
func (s source) prevLine(n int) int {
	for n--; n >= 1; n-- {
		if !blank(s.line(n)) {
			return n
		}
	}
	return 0
}

// nextLine is the number of the first line after n that is not blank, or 0.
func (s source) nextLine(n int) int {
	for n++; n <= len(s); n++ {
		if !blank(s.line(n)) {
			return n
		}
	}
	return 0
}

// from is l from the 1-based column col on.
func from(l string, col int) string { return l[min(max(col-1, 0), len(l)):] }

// firstWord is the key a line starts with, for "write it as KEY: value".
func firstWord(l string) string {
	t := strings.TrimLeft(l, " ")
	for strings.HasPrefix(t, "- ") {
		t = strings.TrimLeft(t[2:], " ")
	}
	if i := strings.IndexAny(t, " \t:"); i >= 0 {
		t = t[:i]
	}
	return t
}

const (
	alignHint  = "keys of the same mapping must start in the same column"
	indentMore = "this line is indented more than the line above it; " + alignHint
	indentLess = "this line is indented less than the line above it; " + alignHint
)

// plainSyntax rewrites the parser's message msg about the token at line
// and col of src. It returns the position to report (which may be another
// line) and the message; ok is false for messages it does not know.
func plainSyntax(src []byte, msg string, line, col int) (int, int, string, bool) {
	s := source(strings.Split(string(src), "\n"))
	l := s.line(line)
	switch {
	case strings.Contains(msg, `'\t'`) || strings.Contains(msg, "'\t'"):
		if i := strings.IndexByte(l, '\t'); i >= 0 && strings.TrimLeft(l[:i], " ") == "" {
			return line, i + 1, "this line is indented with a tab; indent with spaces only", true
		}
		return line, col, "a tab cannot be used here; use spaces", true

	case strings.HasPrefix(msg, "mapping value is not allowed in this context"):
		// The value at line runs on into the next line, whose ": " the
		// parser finds inside the value: that line is indented too far.
		if n := s.nextLine(line); n > 0 && indent(s.line(n)) > keyCol(l) && !strings.Contains(from(l, col+1), ": ") {
			return n, indent(s.line(n)), indentMore, true
		}
		return line, col, `this value contains ": ", which would start a mapping; put the value in quotes`, true

	case strings.HasPrefix(msg, "value is not allowed in this context"):
		if col > indent(l) { // something after a value on the same line
			at := from(l, col)
			if before := l[:len(l)-len(at)]; strings.ContainsAny(before, `'"`) {
				return line, col, `a quote ended the value before this text; inside '...' write a quote as '' (it''s), or put the value in "..."`, true
			}
			return line, col, fmt.Sprintf("unexpected %q after the value", firstWord(at)), true
		}
		p := s.line(s.prevLine(line))
		if strings.HasPrefix(from(l, col), "-") {
			if col < indent(p) {
				return line, col, "this list item is indented less than the one above it; items of the same list must start in the same column", true
			}
			return line, col, "a list item cannot go here; indent it under a key", true
		}
		if strings.HasPrefix(strings.TrimLeft(p, " "), "- ") && col == indent(p) {
			return line, col, "this key is in the same column as the list above it; a list and keys cannot share a level", true
		}
		if col < keyCol(p) {
			return line, col, indentLess, true
		}
		return line, col, indentMore, true

	case msg == "non-map value is specified":
		if strings.HasPrefix(from(l, col), "-") {
			return line, col, `a list item cannot go among the keys of a mapping; indent it under a key, or remove the "-"`, true
		}
		if p := strings.TrimRight(s.line(s.prevLine(line)), " "); strings.HasSuffix(p, "|") || strings.HasSuffix(p, ">") {
			return line, col, "the text of a block (| or >) must be indented more than its key", true
		}
		return line, col, fmt.Sprintf(`missing ":" after the key; write it as "%s: value"`, firstWord(l)), true

	case msg == "unexpected key name":
		k := strings.TrimLeft(l, " -")
		if i := strings.Index(k, ":"); i > 0 && i+1 < len(k) && k[i+1] != ' ' {
			return line, col, fmt.Sprintf(`missing space after ":"; write "%s: %s"`, k[:i], strings.TrimSpace(k[i+1:])), true
		}
		return line, col, fmt.Sprintf(`missing ":" after the key; write it as "%s: value"`, firstWord(l)), true

	case strings.HasPrefix(msg, "could not find end character of double-quoted text"):
		return line, col, `this value opens a quote (") that is never closed; add " at its end`, true
	case strings.HasPrefix(msg, "could not find end character of single-quoted text"):
		return line, col, "this value opens a quote (') that is never closed; add ' at its end", true
	case strings.HasPrefix(msg, "sequence end token ']' not found"):
		return line, col, `this "[" is never closed; add "]" after the last item`, true
	case strings.HasPrefix(msg, "could not find flow mapping end token '}'"):
		return line, col, `this "{" is never closed; add "}" after the last key`, true
	case msg == "',' or ']' must be specified":
		return line, col, `expected "," or "]": close the list opened with "[" before this`, true
	case msg == "',' or '}' must be specified":
		return line, col, `expected "," or "}": close the mapping opened with "{" before this`, true
	}
	if m := reservedChar.FindStringSubmatch(msg); m != nil {
		return line, col, fmt.Sprintf("a value cannot start with %q; put the value in quotes", m[1]), true
	}
	return line, col, "", false
}
