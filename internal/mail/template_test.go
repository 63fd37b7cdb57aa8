package mail_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"nurture/internal/audience"
	"nurture/internal/mail"
)

func TestLoadTemplatesGood(t *testing.T) {
	ts, err := mail.LoadTemplates("testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ts.Names(), []string{"hello", "htmlonly"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	if !ts.Has("hello") || ts.Has("README") || ts.Has("nope") {
		t.Error("Has gives wrong answers")
	}

	r, err := ts.Render("hello", mail.SampleData())
	if err != nil {
		t.Fatal(err)
	}
	want := mail.Rendered{
		Subject: "Ann, your sample news",
		HTML: "<p>Hi Ann!</p>\n<p>6 orders, $512.40, plan pro, code WELCOME10.</p>\n" +
			"<a href=\"https://example.com/x?a=1&amp;b=2\">go</a>\n",
		Text: "Hi Ann!\n6 orders, $512.40, plan pro, code WELCOME10.\n",
	}
	if *r != want {
		t.Errorf("Render =\n%#v\nwant\n%#v", *r, want)
	}

	r, err = ts.Render("htmlonly", mail.SampleData())
	if err != nil {
		t.Fatal(err)
	}
	if r.Text != "" || r.HTML != "<p>loyal</p>\n" {
		t.Errorf("htmlonly rendered %#v, want HTML only", *r)
	}
}

func TestLoadTemplatesBad(t *testing.T) {
	tests := []struct {
		dir  string
		want string
	}{
		{"testdata/bad/parse", `testdata/bad/parse/broken.html.tmpl:3: bad character U+003C '<'
testdata/bad/parse/broken.txt.tmpl:2: function "foo" not defined; nurture's functions are attr, default, money
testdata/bad/parse/misspelt.subject.tmpl:1: function "defualt" not defined; did you mean default?
testdata/bad/parse/second.subject.tmpl:1: missing value for if`},
		{"testdata/bad/unpaired", `testdata/bad/unpaired/nohtml.subject.tmpl: no matching nohtml.html.tmpl
testdata/bad/unpaired/nosubject.html.tmpl: no matching nosubject.subject.tmpl
testdata/bad/unpaired/orphan.txt.tmpl: no matching orphan.subject.tmpl and orphan.html.tmpl`},
		{"testdata/bad/escape", `testdata/bad/escape/branch.html.tmpl:2:6: {{if}} branches end in different contexts
testdata/bad/escape/quote.html.tmpl: ends in a non-text context`},
		{"testdata/bad/names", `testdata/bad/names/Welcome.subject.tmpl: invalid template name "Welcome", want [a-z0-9][a-z0-9_-]*
testdata/bad/names/other.tmpl: unknown template file, want NAME.subject.tmpl, NAME.html.tmpl or NAME.txt.tmpl`},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			ts, err := mail.LoadTemplates(tt.dir)
			if ts != nil {
				t.Error("got templates along with errors")
			}
			var errs mail.TemplateErrors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v (%T), want TemplateErrors", err, err)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", err, tt.want)
			}
			var one mail.TemplateError
			if !errors.As(err, &one) || one != errs[0] {
				t.Errorf("errors.As(TemplateError) = %v, want the first problem", one)
			}
		})
	}

	if _, err := mail.LoadTemplates("testdata/absent"); err == nil || !strings.Contains(err.Error(), "testdata/absent") {
		t.Errorf("missing dir: error %v, want one naming it", err)
	}
}

func TestTemplateErrorFormat(t *testing.T) {
	for _, tt := range []struct {
		e    mail.TemplateError
		want string
	}{
		{mail.TemplateError{File: "t/a.html.tmpl", Line: 3, Col: 7, Msg: "m"}, "t/a.html.tmpl:3:7: m"},
		{mail.TemplateError{File: "t/a.html.tmpl", Line: 3, Msg: "m"}, "t/a.html.tmpl:3: m"},
		{mail.TemplateError{File: "t/a.html.tmpl", Msg: "m"}, "t/a.html.tmpl: m"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	ts, err := mail.LoadTemplates("testdata/render")
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]string{
		"missing":   `testdata/render/missing.html.tmpl:2:16: the customer has no attribute "coupon"; write {{attr . "coupon" "fallback"}} for an attribute some customers lack`,
		"badmoney":  `testdata/render/badmoney.txt.tmpl:1:9: <money .FirstName>: error calling money: money: "Ann" is not a number`,
		"field":     `testdata/render/field.html.tmpl:3:5: no field Firstname; did you mean FirstName?`,
		"lower":     `testdata/render/lower.html.tmpl:1:17: no field plan; the fields are ID, Email, FirstName, Timezone, Subscribed, OrdersCount, TotalSpent, InactiveDays, DaysSinceSignup, DaysSincePurchase, Attributes, Stage, CreatedAt, LastActiveAt, FirstPurchaseAt, LastPurchaseAt, Event, Campaign, Now, UnsubscribeURL, and for a customer attribute write {{attr . "plan" "fallback"}}`,
		"nested":    `testdata/render/nested.html.tmpl:1:10: no field Yeer in type time.Time`,
		"multiline": `testdata/render/multiline.subject.tmpl: subject must be a single line`,
		"empty":     `testdata/render/empty.subject.tmpl: subject is empty`,
	}
	for name, want := range tests {
		_, err := ts.Render(name, mail.SampleData())
		var te mail.TemplateError
		if !errors.As(err, &te) {
			t.Errorf("%s: error %v (%T), want a TemplateError", name, err, err)
			continue
		}
		if err.Error() != want {
			t.Errorf("%s: error\n%s\nwant\n%s", name, err, want)
		}
	}
	_, err = ts.Render("nope", mail.SampleData())
	if !errors.Is(err, mail.ErrUnknownTemplate) || err.Error() != `unknown template "nope"` {
		t.Errorf("unknown template: error %v", err)
	}
}

func TestRenderEscapesHTML(t *testing.T) {
	ts, err := mail.LoadTemplates("../../templates")
	if err != nil {
		t.Fatal(err)
	}
	d := mail.SampleData()
	d.FirstName = `<script>alert("x")</script>`
	d.Attributes["referral_url"] = `javascript:alert(1)`
	r, err := ts.Render("referral", d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.HTML, "<script>") || !strings.Contains(r.HTML, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
		t.Errorf("first name not escaped in HTML:\n%s", r.HTML)
	}
	if strings.Contains(r.HTML, `href="javascript:`) {
		t.Errorf("javascript: URL survived in an href:\n%s", r.HTML)
	}
	// Subject and text are plain text: nothing to escape there.
	if !strings.Contains(r.Subject, `<script>alert("x")</script>`) || !strings.Contains(r.Text, `<script>`) {
		t.Errorf("subject %q / text changed the name", r.Subject)
	}
}

func TestFuncs(t *testing.T) {
	ts, err := mail.LoadTemplates("testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	d := mail.SampleData()
	d.FirstName = "  "
	d.TotalSpent = 42.5
	d.Attributes["coupon"] = "VIP"
	r, err := ts.Render("hello", d)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Hi there!\n6 orders, $42.50, plan pro, code VIP.\n"; r.Text != want {
		t.Errorf("text = %q, want %q", r.Text, want)
	}
	if r.Subject != "there, your sample news" {
		t.Errorf("subject = %q", r.Subject)
	}
}

// A customer with nothing but an email address must still get a sensible
// email from every shipped template.
func TestShippedTemplates(t *testing.T) {
	ts, err := mail.LoadTemplates("../../templates")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"at-risk", "cart-reminder", "loyalty-club", "loyalty-reward", "onboarding", "referral", "review-request",
		"thank-you", "welcome-1", "welcome-2", "welcome-3", "winback", "winback-b",
	}
	if got := ts.Names(); !slices.Equal(got, want) {
		t.Fatalf("shipped templates %q, want %q", got, want)
	}
	bare := &mail.Data{Campaign: "bare"}
	bare.Email = "x@example.com"
	bare.Attributes = map[string]any{}
	fallbacks := map[string]string{
		"thank-you": "https://example.com/feedback", "loyalty-reward": "LOYAL15",
		"referral": "https://example.com/refer", "winback": "COMEBACK20", "onboarding": "WELCOME10",
		"at-risk":   "days since we last saw you",
		"welcome-1": "https://example.com/account", "welcome-2": "https://example.com/bestsellers",
		"welcome-3": "WELCOME10", "cart-reminder": "https://example.com/cart",
		"review-request": "https://example.com/reviews/new", "loyalty-club": "https://example.com/club",
		"winback-b": "COMEBACK20",
	}
	for _, name := range want {
		for _, d := range []*mail.Data{mail.SampleData(), bare} {
			r, err := ts.Render(name, d)
			if err != nil {
				t.Errorf("%s with %s: %v", name, d.Campaign, err)
				continue
			}
			greeting := "Ann"
			if d == bare {
				greeting = "there"
			}
			if !strings.Contains(r.Subject, greeting) || !strings.Contains(r.HTML, greeting) || !strings.Contains(r.Text, greeting) {
				t.Errorf("%s with %s: no %q in subject %q or body", name, d.Campaign, greeting, r.Subject)
			}
			if !strings.Contains(r.HTML, fallbacks[name]) || !strings.Contains(r.Text, fallbacks[name]) {
				t.Errorf("%s with %s: %q missing from HTML or text", name, d.Campaign, fallbacks[name])
			}
			if strings.Contains(r.HTML+r.Text, "<nil>") || strings.Contains(r.HTML+r.Text, "no value") {
				t.Errorf("%s with %s: unset value printed", name, d.Campaign)
			}
		}
	}
	r, err := ts.Render("loyalty-reward", mail.SampleData())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.HTML, "6 orders and $512.40 spent") {
		t.Errorf("loyalty-reward does not show facts:\n%s", r.HTML)
	}
	r, err = ts.Render("winback-b", mail.SampleData())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Text, "Since your last order, 12 days ago, we have added") {
		t.Errorf("winback-b does not show the days since the last order:\n%s", r.Text)
	}
}

func TestRenderConcurrent(t *testing.T) {
	ts, err := mail.LoadTemplates("../../templates")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				d := mail.SampleData()
				d.FirstName = fmt.Sprintf("n%d-%d", i, j)
				r, err := ts.Render(ts.Names()[j%len(ts.Names())], d)
				if err != nil {
					t.Error(err)
					return
				}
				if !strings.Contains(r.Subject, d.FirstName) {
					t.Errorf("subject %q lacks %q", r.Subject, d.FirstName)
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkRender(b *testing.B) {
	ts, err := mail.LoadTemplates("../../templates")
	if err != nil {
		b.Fatal(err)
	}
	d := mail.SampleData()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := ts.Render("winback", d); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestRenderSizeLimit(t *testing.T) {
	ts, err := mail.LoadTemplates("testdata/size")
	if err != nil {
		t.Fatal(err)
	}
	// Subject and HTML of edge make exactly MaxRenderedSize bytes.
	r, err := ts.Render("edge", mail.SampleData())
	if err != nil {
		t.Fatalf("edge: %v", err)
	}
	if n := len(r.Subject) + len(r.HTML) + len(r.Text); n != mail.MaxRenderedSize {
		t.Errorf("edge rendered %d bytes, want %d", n, mail.MaxRenderedSize)
	}
	for name, want := range map[string]string{
		"over": "testdata/size/over.html.tmpl: rendered message is over the 2 MiB limit",
		"huge": "testdata/size/huge.txt.tmpl: rendered message is over the 2 MiB limit",
	} {
		_, err := ts.Render(name, mail.SampleData())
		if !errors.Is(err, mail.ErrTooLarge) || err.Error() != want {
			t.Errorf("%s: error %v, want %q wrapping ErrTooLarge", name, err, want)
		}
	}
}

// TestRenderStopsAtLimit checks that a template looping to 100 MB stops
// writing at the limit rather than building the whole output first.
func TestRenderStopsAtLimit(t *testing.T) {
	ts, err := mail.LoadTemplates("testdata/size")
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := ts.Render("huge", mail.SampleData()); !errors.Is(err, mail.ErrTooLarge) {
		t.Fatalf("error %v, want ErrTooLarge", err)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 8*mail.MaxRenderedSize {
		t.Errorf("Render allocated %d bytes for a message of at most %d", n, mail.MaxRenderedSize)
	}
}

func TestLoadTemplatesRefusesLargeFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) {
		body := "<p>" + strings.Repeat("x", size-8) + "</p>\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("big.subject.tmpl", 100)
	write("big.html.tmpl", mail.MaxTemplateFileSize+1)
	write("edge.subject.tmpl", 100)
	write("edge.html.tmpl", mail.MaxTemplateFileSize)
	_, err := mail.LoadTemplates(dir)
	want := filepath.Join(dir, "big.html.tmpl") + ": file is 1048577 bytes; the limit is 1 MiB"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}

// Data carries every fact of audience.Facts under the same name and type,
// and NewData copies each one.
func TestDataHasEveryFact(t *testing.T) {
	facts := reflect.TypeFor[audience.Facts]()
	data := reflect.TypeFor[mail.Data]()
	f := audience.Facts{}
	fv := reflect.ValueOf(&f).Elem()
	for i := range facts.NumField() {
		sf := facts.Field(i)
		df, ok := data.FieldByName(sf.Name)
		if !ok || df.Type != sf.Type || len(df.Index) != 1 {
			t.Errorf("mail.Data lacks the fact %s %s as a field of its own", sf.Name, sf.Type)
			continue
		}
		// A value that is not the zero one, to see it copied.
		fv.Field(i).Set(nonZero(t, sf.Type))
	}
	d := reflect.ValueOf(mail.NewData(&f, "c")).Elem()
	for i := range facts.NumField() {
		name := facts.Field(i).Name
		if got := d.FieldByName(name); got.IsValid() && !reflect.DeepEqual(got.Interface(), fv.Field(i).Interface()) {
			t.Errorf("NewData: %s = %v, want %v", name, got.Interface(), fv.Field(i).Interface())
		}
	}
}

func nonZero(t *testing.T, typ reflect.Type) reflect.Value {
	t.Helper()
	switch typ.Kind() {
	case reflect.String:
		return reflect.ValueOf("x").Convert(typ)
	case reflect.Bool:
		return reflect.ValueOf(true)
	case reflect.Int:
		return reflect.ValueOf(7)
	case reflect.Float64:
		return reflect.ValueOf(1.5)
	case reflect.Map:
		return reflect.ValueOf(map[string]any{"k": "v"})
	case reflect.Pointer:
		p := reflect.New(typ.Elem())
		p.Elem().Set(nonZero(t, typ.Elem()))
		return p
	case reflect.Struct:
		if typ == reflect.TypeFor[time.Time]() {
			return reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		}
		v := reflect.New(typ).Elem()
		for i := range typ.NumField() {
			v.Field(i).Set(nonZero(t, typ.Field(i).Type))
		}
		return v
	}
	t.Fatalf("no test value for %s", typ)
	return reflect.Value{}
}
