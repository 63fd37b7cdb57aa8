package mail

import (
	"bytes"
	"io"
	"strings"
	texttemplate "text/template"
	"time"
)

// RenderSubject executes src, a subject written as a template (such as an
// experiment variant's subject override), with d, as a NAME.subject.tmpl
// file would be. Errors are TemplateError values naming where, a label
// such as `campaigns/winback.yaml: variants "b" subject`.
func RenderSubject(where, src string, d *Data) (string, error) {
	t, err := texttemplate.New("subject").Option("missingkey=error").Funcs(textFuncs).Parse(src)
	if err != nil {
		return "", templateError(where, "subject", err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&limitWriter{buf: &buf, left: MaxRenderedSize}, d); err != nil {
		return "", renderError(where, err)
	}
	s := strings.TrimSpace(buf.String())
	switch {
	case s == "":
		return "", TemplateError{File: where, Msg: "subject is empty"}
	case strings.ContainsAny(s, "\r\n"):
		return "", TemplateError{File: where, Msg: "subject must be a single line"}
	}
	return s, nil
}

// WriteMessage writes m as the complete RFC 5322 message a transport
// would send, dated now: what the file outbox stores, for previews. It is
// not DKIM-signed.
func WriteMessage(w io.Writer, m *Message, now time.Time) error {
	var buf bytes.Buffer
	r, err := m.render(&buf, now, nil, false, nil)
	if err != nil {
		return err
	}
	_, err = w.Write(r.bytes())
	return err
}
