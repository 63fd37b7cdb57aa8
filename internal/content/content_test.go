package content_test

import (
	"os"
	"path/filepath"
	"testing"

	"nurture/internal/content"
)

// TestLoadReportsOversizedRender checks that lint points at a campaign's
// email.template when its template renders over the size limit.
func TestLoadReportsOversizedRender(t *testing.T) {
	campaigns, templates := t.TempDir(), t.TempDir()
	files := map[string]string{
		filepath.Join(campaigns, "lifecycle.yaml"):     "stages:\n  - name: active\n",
		filepath.Join(campaigns, "big.yaml"):           "name: big\nschedule: \"@daily\"\nemail:\n  template: huge\n",
		filepath.Join(templates, "huge.subject.tmpl"):  "Hi {{.FirstName}}",
		filepath.Join(templates, "huge.html.tmpl"):     "{{range 300000}}<p>{{$.FirstName}}</p>{{end}}",
		filepath.Join(templates, "small.subject.tmpl"): "Hi",
		filepath.Join(templates, "small.html.tmpl"):    "<p>Hi</p>",
	}
	for name, body := range files {
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := content.Load(campaigns, templates)
	want := filepath.Join(campaigns, "big.yaml") + `:4:13: template "huge" fails to render for a sample customer: ` +
		filepath.Join(templates, "huge.html.tmpl") + ": rendered message is over the 2 MiB limit"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}

// TestLoadSuggestsTemplate checks that a misspelt template name gets the
// name of the template present in the templates directory.
func TestLoadSuggestsTemplate(t *testing.T) {
	campaigns, templates := t.TempDir(), t.TempDir()
	files := map[string]string{
		filepath.Join(campaigns, "lifecycle.yaml"):       "stages:\n  - name: active\n",
		filepath.Join(campaigns, "a.yaml"):               "name: a\nschedule: \"@daily\"\nemail:\n  template: winbak\n",
		filepath.Join(campaigns, "b.yaml"):               "name: b\nschedule: \"@daily\"\nemail:\n  template: nothing-like-it\n",
		filepath.Join(templates, "winback.subject.tmpl"): "Hi",
		filepath.Join(templates, "winback.html.tmpl"):    "<p>Hi</p>",
	}
	for name, body := range files {
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := content.Load(campaigns, templates)
	want := filepath.Join(campaigns, "a.yaml") + `:4:13: template "winbak" not found: want ` +
		filepath.Join(templates, "winbak.subject.tmpl") + " and " + filepath.Join(templates, "winbak.html.tmpl") + `; did you mean "winback"?` + "\n" +
		filepath.Join(campaigns, "b.yaml") + `:4:13: template "nothing-like-it" not found: want ` +
		filepath.Join(templates, "nothing-like-it.subject.tmpl") + " and " + filepath.Join(templates, "nothing-like-it.html.tmpl")
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}

// TestLoadChecksEveryTemplate checks that each step's template, each
// variant's template and each variant's subject is checked, and that
// problems are reported where the campaign names them.
func TestLoadChecksEveryTemplate(t *testing.T) {
	campaigns, templates := t.TempDir(), t.TempDir()
	files := map[string]string{
		filepath.Join(campaigns, "lifecycle.yaml"): "stages:\n  - name: active\n",
		filepath.Join(campaigns, "journey.yaml"): "name: journey\nschedule: \"@daily\"\nsteps:\n" +
			"  - template: hello\n" +
			"  - template: helo\n    after: 24h\n" +
			"  - template: broken\n    after: 48h\n" +
			"  - template: hello\n    after: 72h\n",
		filepath.Join(campaigns, "split.yaml"): "name: split\nschedule: \"@daily\"\nemail: {template: hello}\nvariants:\n" +
			"  - {name: a, subject: \"{{.FirstName}}, hello\"}\n" +
			"  - {name: b, template: missing}\n" +
			"  - {name: c, subject: \"Hi {{.Firstname}}\"}\n" +
			"  - {name: d, template: broken, subject: \"Hi {{.FirstName\"}\n",
		filepath.Join(templates, "hello.subject.tmpl"):  "Hello {{.FirstName}}",
		filepath.Join(templates, "hello.html.tmpl"):     "<p>Hello</p>",
		filepath.Join(templates, "broken.subject.tmpl"): "Hi {{.Attributes.coupon}}",
		filepath.Join(templates, "broken.html.tmpl"):    "<p>Hi</p>",
	}
	for name, body := range files {
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := content.Load(campaigns, templates)
	journey, split := filepath.Join(campaigns, "journey.yaml"), filepath.Join(campaigns, "split.yaml")
	brokenSubject := filepath.Join(templates, "broken.subject.tmpl")
	want := journey + `:5:15: template "helo" not found: want ` + filepath.Join(templates, "helo.subject.tmpl") + " and " +
		filepath.Join(templates, "helo.html.tmpl") + `; did you mean "hello"?` + "\n" +
		journey + `:7:15: template "broken" fails to render for a sample customer: ` + brokenSubject +
		`:1:17: the customer has no attribute "coupon"; write {{attr . "coupon" "fallback"}} for an attribute some customers lack` + "\n" +
		split + `:6:25: template "missing" not found: want ` + filepath.Join(templates, "missing.subject.tmpl") + " and " +
		filepath.Join(templates, "missing.html.tmpl") + "\n" +
		split + `:7:30: variants[3].subject: no field Firstname; did you mean FirstName?` + "\n" +
		split + `:8:25: template "broken" fails to render for a sample customer: ` + brokenSubject +
		`:1:17: the customer has no attribute "coupon"; write {{attr . "coupon" "fallback"}} for an attribute some customers lack` + "\n" +
		split + `:8:43: variants[4].subject: unclosed action`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}
