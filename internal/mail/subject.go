package mail

import (
	"bytes"
	"errors"
	"strings"
	texttemplate "text/template"
)

// RenderSubject executes src, a subject line written as a template (a
// campaign variant's subject), with d, as a NAME.subject.tmpl file would
// be. Errors are TemplateError values with an empty File, their Line and
// Col counted within src.
func RenderSubject(src string, d *Data) (string, error) {
	const name = "subject"
	t, err := texttemplate.New(name).Option("missingkey=error").Funcs(textFuncs).Parse(src)
	if err != nil {
		return "", templateError("", name, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&limitWriter{buf: &buf, left: MaxRenderedSize}, d); err != nil {
		if errors.Is(err, ErrTooLarge) {
			return "", TemplateError{Msg: ErrTooLarge.Error()}
		}
		return "", templateError("", name, err)
	}
	s := strings.TrimSpace(buf.String())
	switch {
	case s == "":
		return "", TemplateError{Msg: "subject is empty"}
	case strings.ContainsAny(s, "\r\n"):
		return "", TemplateError{Msg: "subject must be a single line"}
	}
	return s, nil
}
