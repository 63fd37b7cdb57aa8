package tracking_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"image/gif"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"nurture/internal/tracking"
	"nurture/internal/unsubscribe"
)

var update = flag.Bool("update", false, "rewrite the expected outputs in testdata")

const (
	base   = "https://mail.example.com"
	secret = "0123456789abcdef-test-secret"
)

var (
	issued   = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	delivery = uuid.MustParse("6f1c1a52-7d59-4c4e-9f0e-2f1d1c0b9a01")
)

func links(t testing.TB, now func() time.Time) *tracking.Links {
	t.Helper()
	l, err := tracking.New(tracking.Config{BaseURL: base, Secret: secret, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func at(t time.Time) func() time.Time { return func() time.Time { return t } }

func token(t *testing.T, u, prefix string) string {
	t.Helper()
	tok, ok := strings.CutPrefix(u, base+prefix)
	if !ok {
		t.Fatalf("%s does not start with %s%s", u, base, prefix)
	}
	return tok
}

func TestTokens(t *testing.T) {
	l := links(t, at(issued))
	target := "https://shop.example.com/new?utm_source=mail&x=1"
	click := token(t, l.ClickURL(delivery, target), tracking.ClickPath)
	open := token(t, l.OpenURL(delivery), tracking.OpenPath)
	if len(open) > 60 || strings.ContainsAny(open+click, "+/=%") {
		t.Errorf("tokens are not compact and URL-safe: %s %s", open, click)
	}

	// Valid, a second before the TTL ends, and expired a second after.
	for _, tt := range []struct {
		name string
		now  time.Time
		err  error
	}{
		{"fresh", issued, nil},
		{"last second", issued.Add(tracking.DefaultTTL), nil},
		{"expired", issued.Add(tracking.DefaultTTL + time.Second), tracking.ErrExpired},
	} {
		checker := links(t, at(tt.now))
		got, err := checker.Check(tracking.Click, click)
		if !errors.Is(err, tt.err) {
			t.Errorf("%s: click: err %v, want %v", tt.name, err, tt.err)
		}
		// An expired token still says where it leads, so its click can be
		// redirected.
		want := tracking.Token{Kind: tracking.Click, Delivery: delivery, Issued: issued, Target: target}
		if got != want {
			t.Errorf("%s: click: %+v, want %+v", tt.name, got, want)
		}
		got, err = checker.Check(tracking.Open, open)
		if !errors.Is(err, tt.err) || got != (tracking.Token{Kind: tracking.Open, Delivery: delivery, Issued: issued}) {
			t.Errorf("%s: open: %+v, %v", tt.name, got, err)
		}
	}

	raw, err := base64.RawURLEncoding.DecodeString(click)
	if err != nil {
		t.Fatal(err)
	}
	reencode := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	altered := func(i int, b byte) string {
		c := bytes.Clone(raw)
		c[i] = b
		return reencode(c)
	}
	other, err := tracking.New(tracking.Config{BaseURL: base, Secret: "another-secret-of-16+", Now: at(issued)})
	if err != nil {
		t.Fatal(err)
	}
	unsub, err := unsubscribe.New(unsubscribe.Config{BaseURL: base, Secret: secret, Now: at(issued)})
	if err != nil {
		t.Fatal(err)
	}
	unsubURL, _ := url.Parse(unsub.URL("c1", "welcome"))
	evil := append(bytes.Clone(raw[:len(raw)-len(target)]), "https://evil.example.com/"...)
	for _, tt := range []struct {
		name, kind, token string
	}{
		{"target altered", "click", reencode(evil)},
		{"target cut", "click", reencode(raw[:len(raw)-1])},
		{"delivery altered", "click", altered(5, raw[5]^1)},
		{"issued moved", "click", altered(20, raw[20]^1)},
		{"tag altered", "click", altered(25, raw[25]^1)},
		{"other secret", "click", token(t, other.ClickURL(delivery, target), tracking.ClickPath)},
		{"open token as a click", "click", open},
		{"click token as an open", "open", click},
		{"unsubscribe signature replayed", "click", unsubURL.Query().Get("t")},
		{"empty", "click", ""},
		{"not base64", "open", "!!!"},
		{"too short", "open", open[:20]},
		{"padded", "open", open + "="},
	} {
		kind := tracking.Open
		if tt.kind == "click" {
			kind = tracking.Click
		}
		if got, err := l.Check(kind, tt.token); !errors.Is(err, tracking.ErrInvalid) || got != (tracking.Token{}) {
			t.Errorf("%s: %+v, %v; want ErrInvalid", tt.name, got, err)
		}
	}

	if _, err := tracking.New(tracking.Config{BaseURL: base, Secret: "short"}); err == nil || err.Error() != "tracking: secret: want at least 16 characters" {
		t.Errorf("short secret: %v", err)
	}
	if _, err := tracking.New(tracking.Config{BaseURL: "mail.example.com", Secret: secret}); err == nil ||
		err.Error() != `tracking: public URL "mail.example.com": want an absolute http(s) URL such as https://mail.example.com` {
		t.Errorf("relative base: %v", err)
	}
}

var trackingURL = regexp.MustCompile(regexp.QuoteMeta(base) + `/t/([oc])/([A-Za-z0-9_-]+)`)

// readable replaces every tracking URL in s by {open} or {click TARGET},
// after checking its token is for delivery.
func readable(t *testing.T, l *tracking.Links, s string) string {
	t.Helper()
	return trackingURL.ReplaceAllStringFunc(s, func(m string) string {
		sub := trackingURL.FindStringSubmatch(m)
		kind := tracking.Kind(sub[1][0])
		tok, err := l.Check(kind, sub[2])
		if err != nil || tok.Delivery != delivery {
			t.Errorf("%s: %+v, %v", m, tok, err)
		}
		if kind == tracking.Open {
			return "{open}"
		}
		return "{click " + tok.Target + "}"
	})
}

func golden(t *testing.T, file, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n%s", file, got)
	}
}

// TestRewrite: every http(s) link of the HTML and text fixtures goes
// through the click redirect to exactly its URL, except the unsubscribe
// link, mailto:, tel:, anchors, relative links and those the caller keeps;
// the pixel goes before </body>.
func TestRewrite(t *testing.T) {
	l := links(t, at(issued))
	rw := tracking.Rewrite{Delivery: delivery, Opens: true, Clicks: true, Keep: []string{"https://keep.example.com/as-is"}}
	html, err := os.ReadFile("testdata/email.html")
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.HTML(string(html), rw)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/email.html.want", readable(t, l, got))
	text, err := os.ReadFile("testdata/email.txt")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/email.txt.want", readable(t, l, l.Text(string(text), rw)))

	// Opens alone: the links stay; clicks alone: no pixel, and the text
	// part is rewritten; neither: nothing changes.
	opens, _ := l.HTML(string(html), tracking.Rewrite{Delivery: delivery, Opens: true})
	const pixel = `<img src="{open}" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0">`
	if want := strings.Replace(string(html), "</body>", pixel+"</body>", 1); readable(t, l, opens) != want {
		t.Errorf("opens only:\n%s", opens)
	}
	clicks, _ := l.HTML(string(html), tracking.Rewrite{Delivery: delivery, Clicks: true})
	if strings.Contains(readable(t, l, clicks), "{open}") || !strings.Contains(readable(t, l, clicks), "{click https://shop.example.com/area}") {
		t.Errorf("clicks only:\n%s", clicks)
	}
	if s, _ := l.HTML(string(html), tracking.Rewrite{Delivery: delivery}); s != string(html) {
		t.Errorf("nothing tracked, HTML changed:\n%s", s)
	}
	if s := l.Text(string(text), tracking.Rewrite{Delivery: delivery, Opens: true}); s != string(text) {
		t.Errorf("opens only, text changed:\n%s", s)
	}
	// Without </body>, the pixel goes at the end.
	if s, _ := l.HTML(`<p>Hi</p>`, tracking.Rewrite{Delivery: delivery, Opens: true}); readable(t, l, s) != `<p>Hi</p>`+pixel {
		t.Errorf("fragment: %s", s)
	}
}

func TestScanner(t *testing.T) {
	for ua, want := range map[string]bool{
		"": true,
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36":   false,
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148": false,
		"Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)":                     false,
		"YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html":                                      false,
		"Mozilla/5.0 (compatible; Barracuda Sentinel)":                                                                  true,
		"Mimecast-Url-Protect/1.0": true,
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) BingPreview/1.0b": true,
		"curl/8.5.0":             true,
		"python-requests/2.31.0": true,
		"Go-http-client/1.1":     true,
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)": true,
	} {
		if got := tracking.Scanner(ua); got != want {
			t.Errorf("Scanner(%q) = %v, want %v", ua, got, want)
		}
	}
}

func TestPixelIsAGIF(t *testing.T) {
	// The pixel served is checked in TestHandlers; here the file itself.
	b := tracking.PixelGIF()
	img, err := gif.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if r := img.Bounds(); r.Dx() != 1 || r.Dy() != 1 {
		t.Errorf("pixel is %v", r)
	}
	if _, _, _, a := img.At(0, 0).RGBA(); a != 0 {
		t.Errorf("pixel is not transparent: alpha %d", a)
	}
}
