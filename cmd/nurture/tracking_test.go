package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"nurture/internal/smtptest"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

// TestTracking, end to end: a worker sends a tracked email to the SMTP
// server; the pixel and a link taken from the message received are called
// on the HTTP role like a reader's mail client would; the link leads to
// exactly the URL of the template, and the report counts the email opened
// and clicked.
func TestTracking(t *testing.T) {
	env := fixtureEnv(t)
	campaigns, templates := copyDir(t, env["CAMPAIGNS_DIR"]), copyDir(t, env["TEMPLATES_DIR"])
	welcome, err := os.ReadFile(filepath.Join(campaigns, "welcome.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(path, s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(campaigns, "welcome.yaml"), string(welcome)+"tracking: {opens: true, clicks: true}\n")
	const shop = "https://shop.example.com/new?utm_source=welcome&utm_medium=email"
	write(filepath.Join(templates, "welcome.html.tmpl"),
		`<html><body><p>Hi {{.FirstName}}, see <a href="https://shop.example.com/new?utm_source=welcome&amp;utm_medium=email">what is new</a>.</p>`+
			`<p><a href="mailto:help@example.com">Help</a> <a href="{{.UnsubscribeURL}}">Unsubscribe</a></p></body></html>`)
	write(filepath.Join(templates, "welcome.txt.tmpl"), "Hi {{.FirstName}}, see what is new: "+shop+"\n")
	addr := freeAddr(t)
	env["CAMPAIGNS_DIR"], env["TEMPLATES_DIR"] = campaigns, templates
	env["HTTP_ADDR"], env["PUBLIC_URL"], env["SECRET"] = addr, "http://"+addr, "a-secret-of-at-least-16-characters"

	if _, stderr, code := cli(t, env, "migrate"); code != 0 {
		t.Fatalf("migrate: %s", stderr)
	}
	importFixture(t, env)
	if _, stderr, code := cli(t, env, "run-once", "--at", testenv.FixtureAt); code != 0 {
		t.Fatalf("run-once: %s", stderr)
	}
	// A preview shows the links as written, and says so.
	out, stderr, code := cli(t, env, "preview", "welcome", "--customer", "c1", "--format", "html")
	if code != 0 || strings.Contains(out, "/t/") || !strings.Contains(out, `<a href="https://shop.example.com/new?utm_source=welcome&amp;utm_medium=email">`) ||
		stderr != "note: campaign \"welcome\" tracks opens and clicks; this email's links are shown as written and nothing it does is recorded\n" {
		t.Errorf("preview: %d %s\n%s", code, stderr, out)
	}
	sink := smtptest.Start(t)
	env["SMTP_URL"] = sink.URL()
	p := startProc(t, env, "serve", "--role", "worker,http")
	p.waitLog(30*time.Second, "http listening")

	st := openStore(t, env)
	var lastSent time.Time
	for deadline := time.Now().Add(time.Minute); ; {
		sent, total := 0, 0
		if err := st.Deliveries(context.Background(), func(d *store.DeliveryRow) error {
			total++
			if d.Status == store.StatusSent {
				sent++
				if d.SentAt.After(lastSent) {
					lastSent = *d.SentAt
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if sent == total && total > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries sent", sent, total)
		}
		time.Sleep(100 * time.Millisecond)
	}

	var mail *smtptest.Received
	for _, m := range sink.Messages() {
		switch {
		case strings.HasPrefix(m.Subject, "Welcome"):
			if mail == nil {
				mail = &m
			}
		case strings.Contains(m.HTML+m.Text, "/t/"):
			t.Errorf("an untracked campaign's email is tracked: %s\n%s", m.Subject, m.HTML)
		}
	}
	if mail == nil {
		t.Fatalf("no welcome email among %d", sink.Count())
	}
	pixel := regexp.MustCompile(`<img src="(http://` + regexp.QuoteMeta(addr) + `/t/o/[A-Za-z0-9_-]+)"`).FindStringSubmatch(mail.HTML)
	link := regexp.MustCompile(`<a href="(http://` + regexp.QuoteMeta(addr) + `/t/c/[A-Za-z0-9_-]+)">what is new`).FindStringSubmatch(mail.HTML)
	textLink := regexp.MustCompile(`what is new: (http://` + regexp.QuoteMeta(addr) + `/t/c/[A-Za-z0-9_-]+)`).FindStringSubmatch(mail.Text)
	if pixel == nil || link == nil || textLink == nil || !strings.Contains(mail.HTML, `href="mailto:help@example.com"`) ||
		!strings.Contains(mail.HTML, `href="http://`+addr+`/unsubscribe?`) {
		t.Fatalf("tracked email:\n%s\n%s", mail.HTML, mail.Text)
	}

	// Hits within 2 s of the send are a machine's: call as a reader does,
	// later. (The store's clock is this machine's.)
	time.Sleep(time.Until(lastSent.Add(2100 * time.Millisecond)))
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	hit := func(url string) *http.Response {
		t.Helper()
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("User-Agent", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := hit(pixel[1]); r.StatusCode != 200 || r.Header.Get("Content-Type") != "image/gif" {
		t.Errorf("pixel: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	for _, l := range []string{link[1], textLink[1]} {
		if r := hit(l); r.StatusCode != http.StatusFound || r.Header.Get("Location") != shop {
			t.Errorf("click %s: %d to %q, want 302 to %q", l, r.StatusCode, r.Header.Get("Location"), shop)
		}
	}
	if r := hit(link[1][:len(link[1])-2] + "xy"); r.StatusCode != http.StatusBadRequest || r.Header.Get("Location") != "" {
		t.Errorf("altered click: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}

	type line struct {
		Campaign string  `json:"campaign"`
		Variant  *string `json:"variant"`
		Step     *int    `json:"step"`
		Sent     int     `json:"sent"`
		Opened   int     `json:"opened"`
		Clicked  int     `json:"clicked"`
	}
	var got map[string]line
	for deadline := time.Now().Add(30 * time.Second); ; { // hits are written in the background
		out, stderr, code := cli(t, env, "report", "--json")
		if code != 0 {
			t.Fatalf("report: %s", stderr)
		}
		got = map[string]line{}
		for _, s := range strings.Split(strings.TrimSpace(out), "\n") {
			var l line
			if err := json.Unmarshal([]byte(s), &l); err != nil {
				t.Fatalf("%v: %s", err, s)
			}
			if l.Variant == nil && l.Step == nil {
				got[l.Campaign] = l
			}
		}
		if got["welcome"].Clicked > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if w := got["welcome"]; w.Sent == 0 || w.Opened != 1 || w.Clicked != 1 {
		t.Errorf("welcome: %+v, want opened 1, clicked 1", w)
	}
	if n := got["nudge"]; n.Sent == 0 || n.Opened != 0 || n.Clicked != 0 {
		t.Errorf("nudge: %+v", n)
	}
	metrics, body := get(t, "http://"+addr+"/metrics")
	for _, want := range []string{
		`nurture_tracking_hits_total{campaign="welcome",kind="open",source="human"} 1`,
		`nurture_tracking_hits_total{campaign="welcome",kind="click",source="human"} 2`,
		`nurture_tracking_rejected_total{kind="click",reason="invalid"} 1`,
	} {
		if metrics != 200 || !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestUntrackedWarning: a campaign asking for tracking without PUBLIC_URL
// passes lint with a warning that says where, and serve sends it
// untracked, saying so in its log.
func TestUntrackedWarning(t *testing.T) {
	env := fixtureEnv(t)
	campaigns := copyDir(t, env["CAMPAIGNS_DIR"])
	env["CAMPAIGNS_DIR"] = campaigns
	if err := os.WriteFile(filepath.Join(campaigns, "settings.yaml"), []byte("tracking:\n  clicks: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	welcome := filepath.Join(campaigns, "welcome.yaml")
	b, err := os.ReadFile(welcome)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(welcome, append(b, "tracking: {opens: true}\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := cli(t, env, "lint")
	want := "warning: " + filepath.Join(campaigns, "settings.yaml") + `:2:3: campaign "nudge" tracks clicks, but PUBLIC_URL is not set: its emails go out untracked; set PUBLIC_URL and SECRET` + "\n" +
		"warning: " + welcome + `:10:11: campaign "welcome" tracks opens and clicks, but PUBLIC_URL is not set: its emails go out untracked; set PUBLIC_URL and SECRET` + "\n"
	if code != 0 || stderr != want || !strings.HasPrefix(out, "ok: ") {
		t.Errorf("lint: %d\n%s\nwant\n%s", code, stderr, want)
	}
	env["PUBLIC_URL"], env["SECRET"] = "https://mail.example.com", "a-secret-of-at-least-16-characters"
	if _, stderr, code := cli(t, env, "lint"); code != 0 || stderr != "" {
		t.Errorf("lint with PUBLIC_URL: %d %s", code, stderr)
	}
	delete(env, "PUBLIC_URL")
	if _, stderr, code := cli(t, env, "migrate"); code != 0 {
		t.Fatalf("migrate: %s", stderr)
	}
	p := startProc(t, env, "serve", "--role", "worker")
	p.waitLog(30*time.Second, "level=WARN", "but PUBLIC_URL is not set", "campaign=welcome", `tracks="opens and clicks"`, "at="+welcome+":10:11")
}
