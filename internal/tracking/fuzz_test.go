package tracking_test

import (
	"os"
	"strings"
	"testing"
	"time"

	xhtml "golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"nurture/internal/tracking"
)

// FuzzHTML: whatever the HTML, rewriting never fails, every link of the
// result that leads to an http(s) URL is a click redirect whose token
// checks (or one of the HTTP role's own pages, from the input), and the
// pixel is there.
func FuzzHTML(f *testing.F) {
	for _, file := range []string{"testdata/email.html"} {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add(`<a href="https://x.example/?a=1&amp;b=2">x</a><a href=https://y.example/>y</a></body>`)
	f.Add(`<a href="https://x.example/"<a href='http://z.example/'>`)
	l := links(f, func() time.Time { return issued })
	f.Fuzz(func(t *testing.T, src string) {
		rw := tracking.Rewrite{Delivery: delivery, Opens: true, Clicks: true}
		got, err := l.HTML(src, rw)
		if err != nil {
			t.Fatal(err)
		}
		in := map[string]bool{}
		hrefs(src, func(u string) { in[u] = true })
		hrefs(got, func(u string) {
			if !tracking.Trackable(u) {
				return
			}
			if tokStr, ok := strings.CutPrefix(u, base+tracking.ClickPath); ok {
				if _, err := l.Check(tracking.Click, tokStr); err != nil {
					t.Errorf("link %s: %v", u, err)
				}
				return
			}
			switch {
			case !in[u]:
				t.Errorf("link %s is neither from the input nor a click redirect", u)
			case !strings.HasPrefix(u, base+"/"):
				t.Errorf("link %s is not rewritten", u)
			}
		})
		if !strings.Contains(got, l.OpenURL(delivery)) {
			t.Errorf("no pixel in %q", got)
		}
	})
}

// hrefs calls fn with the href of every link (a, area) of the HTML in s,
// unescaped and trimmed.
func hrefs(s string, fn func(string)) {
	z := xhtml.NewTokenizer(strings.NewReader(s))
	for {
		tt := z.Next()
		if tt == xhtml.ErrorToken {
			break
		}
		if tt != xhtml.StartTagToken && tt != xhtml.SelfClosingTagToken {
			continue
		}
		tok := z.Token()
		if tok.DataAtom != atom.A && tok.DataAtom != atom.Area {
			continue
		}
		for _, a := range tok.Attr {
			if a.Key == "href" && a.Namespace == "" {
				fn(strings.TrimSpace(a.Val))
			}
		}
	}
}
