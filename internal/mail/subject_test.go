package mail_test

import (
	"errors"
	"testing"

	"nurture/internal/mail"
)

func TestRenderSubject(t *testing.T) {
	got, err := mail.RenderSubject("", `{{.FirstName}}, {{attr . "plan" "free"}} is waiting`, mail.SampleData())
	if err != nil || got != "Ann, pro is waiting" {
		t.Errorf("RenderSubject = %q, %v; want %q", got, err, "Ann, pro is waiting")
	}
	tests := []struct {
		src, want string
		line, col int
	}{
		{"Hi {{.Firstname}}", "no field Firstname; did you mean FirstName?", 1, 6},
		{"Hi {{.FirstName", `unclosed action`, 1, 0},
		{"Hi {{frob .}}", `function "frob" not defined; nurture's functions are attr, default, money`, 1, 0},
		{"{{/* nothing */}} ", "subject is empty", 0, 0},
		{"{{\"a\\nb\"}}", "subject must be a single line", 0, 0},
	}
	for _, tt := range tests {
		_, err := mail.RenderSubject("", tt.src, mail.SampleData())
		var te mail.TemplateError
		if !errors.As(err, &te) {
			t.Errorf("%q: %v (%T), want a TemplateError", tt.src, err, err)
			continue
		}
		if te.Msg != tt.want || te.Line != tt.line || te.Col != tt.col || te.File != "" {
			t.Errorf("%q: %+v, want %q at %d:%d", tt.src, te, tt.want, tt.line, tt.col)
		}
	}
}
