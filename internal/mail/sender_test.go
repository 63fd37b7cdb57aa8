package mail_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	netmail "net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"nurture/internal/mail"
	"nurture/internal/smtptest"
)

func message(id, to string) *mail.Message {
	return &mail.Message{
		ID:         id,
		Campaign:   "winback-30",
		CustomerID: "c1",
		MessageID:  mail.MessageID(id, "nurture.example.com"),
		From:       "Example Shop <hello@example.com>",
		To:         to,
		Subject:    "Hello Zoë, 20% off",
		HTML:       "<p>Hello <b>Zoë</b></p>",
		Text:       "Hello Zoë",
		Headers: map[string]string{
			"List-Unsubscribe":      "<https://example.com/u/" + id + ">, <mailto:unsubscribe@example.com?subject=" + id + ">",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
			"X-Nurture-Campaign":    "winback-30",
			"X-Nurture-Delivery":    id,
		},
	}
}

func newSender(t testing.TB, cfg mail.Config) mail.Sender {
	t.Helper()
	s, err := mail.NewSender(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestMessageID(t *testing.T) {
	if got := mail.MessageID("d-42", "example.com"); got != "<d-42@example.com>" {
		t.Errorf("MessageID = %q", got)
	}
}

func TestOutbox(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	s := newSender(t, mail.Config{OutboxDir: dir})
	ctx := context.Background()

	reply, err := s.Send(ctx, message("d1", "Ann <ann@example.com>"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "winback-30", "c1-d1.eml")
	if reply != "stored "+path {
		t.Errorf("reply = %q", reply)
	}
	msg := readEML(t, path)
	for k, want := range map[string]string{
		"Message-Id":            "<d1@nurture.example.com>",
		"From":                  `"Example Shop" <hello@example.com>`,
		"To":                    `"Ann" <ann@example.com>`,
		"List-Unsubscribe":      "<https://example.com/u/d1>, <mailto:unsubscribe@example.com?subject=d1>",
		"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		"X-Nurture-Campaign":    "winback-30",
		"X-Nurture-Delivery":    "d1",
		"Mime-Version":          "1.0",
	} {
		if got := msg.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if subj, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); subj != "Hello Zoë, 20% off" {
		t.Errorf("Subject decodes to %q", subj)
	}
	if _, err := msg.Header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	parts := alternatives(t, msg)
	if parts["text/plain"] != "Hello Zoë" || parts["text/html"] != "<p>Hello <b>Zoë</b></p>" {
		t.Errorf("parts = %q", parts)
	}

	// Sending the delivery again replaces the file and leaves nothing else.
	m := message("d1", "ann@example.com")
	m.Subject = "second"
	if _, err := s.Send(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got := readEML(t, path).Header.Get("Subject"); got != "second" {
		t.Errorf("resent subject %q, want second", got)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "winback-30"))
	if len(entries) != 1 {
		t.Errorf("outbox holds %d files, want 1", len(entries))
	}

	// HTML only.
	m = message("d2", "ann@example.com")
	m.Text = ""
	if _, err := s.Send(ctx, m); err != nil {
		t.Fatal(err)
	}
	if ct := readEML(t, filepath.Join(dir, "winback-30", "c1-d2.eml")).Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("HTML-only Content-Type %q", ct)
	}
}

// TestOutboxPaths checks that campaign names and customer ids, which are
// arbitrary text, become safe parts of the file's path.
func TestOutboxPaths(t *testing.T) {
	dir := t.TempDir()
	s := newSender(t, mail.Config{OutboxDir: dir})
	long := strings.Repeat("x", 70)
	for _, tt := range []struct {
		id, campaign, customer string
		want                   string // relative to dir
	}{
		{"d1", "winback", "c42", "winback/c42-d1.eml"},
		{"d2", "winback", "../../etc/passwd", "winback/_._.._etc_passwd-d2.eml"},
		{"d3", "..", "..", "_./_.-d3.eml"},
		{"d4", "a/b", "ann@example.com", "a_b/ann@example.com-d4.eml"},
		{"d5", "winback", "tab\there\nnew line\x00é", "winback/tab_here_new_line___-d5.eml"},
		{"d6", "winback", `C:\x y`, "winback/C__x_y-d6.eml"},
		{"d7", "winback", long, "winback/" + long[:64] + "-d7.eml"},
		{"d8", "", "c1", "c1-d8.eml"},
		{"d9", "winback", "", "winback/d9.eml"},
	} {
		m := message(tt.id, "ann@example.com")
		m.Campaign, m.CustomerID = tt.campaign, tt.customer
		reply, err := s.Send(context.Background(), m)
		if err != nil {
			t.Fatalf("%s: %v", tt.id, err)
		}
		want := filepath.Join(dir, filepath.FromSlash(tt.want))
		if reply != "stored "+want {
			t.Errorf("%s: reply %q, want %q", tt.id, reply, "stored "+want)
		}
		if got := readEML(t, want).Header.Get("X-Nurture-Delivery"); got != tt.id {
			t.Errorf("%s: file holds delivery %q", tt.id, got)
		}
	}
	if got, want := mail.OutboxGlob(dir, "winback", "../c42"), filepath.Join(dir, "winback", "_._c42-*.eml"); got != want {
		t.Errorf("OutboxGlob = %q, want %q", got, want)
	}
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"_./_.-d3.eml", "a_b/ann@example.com-d4.eml", "c1-d8.eml",
		"winback/C__x_y-d6.eml", "winback/_._.._etc_passwd-d2.eml", "winback/c42-d1.eml",
		"winback/d9.eml", "winback/tab_here_new_line___-d5.eml", "winback/" + long[:64] + "-d7.eml"}
	if !slices.Equal(files, want) {
		t.Errorf("outbox holds\n%q\nwant\n%q", files, want)
	}
}

func TestOutboxRejects(t *testing.T) {
	s := newSender(t, mail.Config{OutboxDir: t.TempDir()})
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		edit func(*mail.Message)
		want string
	}{
		{"bad id", func(m *mail.Message) { m.ID = "../etc/passwd" }, `outbox: delivery id "../etc/passwd" cannot be a file name`},
		{"bad to", func(m *mail.Message) { m.To = "not an address" }, `invalid address: to "not an address": mail: no angle-addr`},
		{"bad from", func(m *mail.Message) { m.From = "" }, `invalid address: from "": mail: no address`},
		{"reserved header", func(m *mail.Message) { m.Headers["subject"] = "x" }, `message <d1@nurture.example.com>: header "subject" cannot be set`},
		{"header injection", func(m *mail.Message) { m.Headers["List-Unsubscribe"] = "<https://x>\r\nBcc: a@b.c" }, `message <d1@nurture.example.com>: header List-Unsubscribe contains a line break`},
		{"bad message id", func(m *mail.Message) { m.MessageID = "d1@x" }, `invalid Message-ID "d1@x", want <id@domain>`},
	} {
		m := message("d1", "ann@example.com")
		tt.edit(m)
		_, err := s.Send(ctx, m)
		if err == nil || err.Error() != tt.want || !mail.IsPermanent(err) {
			t.Errorf("%s: error %v (permanent %t), want permanent %q", tt.name, err, mail.IsPermanent(err), tt.want)
		}
	}

	// Without MessageID, one is derived from the delivery id and From.
	m := message("d3", "ann@example.com")
	m.MessageID = ""
	dir := t.TempDir()
	s = newSender(t, mail.Config{OutboxDir: dir})
	if _, err := s.Send(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got := readEML(t, filepath.Join(dir, "winback-30", "c1-d3.eml")).Header.Get("Message-Id"); got != "<d3@example.com>" {
		t.Errorf("derived Message-ID %q", got)
	}
}

func TestCheckOutbox(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "outbox")
	if err := mail.Check(context.Background(), mail.Config{OutboxDir: dir}); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("Check left %d files", len(entries))
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := mail.Check(context.Background(), mail.Config{OutboxDir: filepath.Join(file, "outbox")})
	if err == nil || !strings.HasPrefix(err.Error(), "outbox "+filepath.Join(file, "outbox")+": ") {
		t.Errorf("Check under a file: %v", err)
	}
}

func TestSMTPSendsOverPool(t *testing.T) {
	srv := smtptest.Start(t)
	const conns, n = 3, 200
	s := newSender(t, mail.Config{URL: srv.URL(), Conns: conns})

	var wg sync.WaitGroup
	for w := range 20 {
		wg.Go(func() {
			for i := w; i < n; i += 20 {
				reply, err := s.Send(context.Background(), message(fmt.Sprintf("d%d", i), fmt.Sprintf("c%d@example.com", i)))
				if err != nil {
					t.Error(err)
					return
				}
				if reply != "250 2.0.0 OK: queued" {
					t.Errorf("reply %q", reply)
				}
			}
		})
	}
	wg.Wait()
	srv.WaitFor(t, n, 5*time.Second)
	if c := srv.Connections(); c < 1 || c > conns {
		t.Errorf("%d messages used %d connections, want 1..%d", n, c, conns)
	}
	seen := map[string]bool{}
	for _, m := range srv.Messages() {
		seen[m.MessageID] = true
		if m.From != "hello@example.com" || len(m.To) != 1 {
			t.Errorf("envelope %s -> %v", m.From, m.To)
		}
	}
	if len(seen) != n || !seen["<d7@nurture.example.com>"] {
		t.Errorf("%d distinct Message-IDs, want %d", len(seen), n)
	}
	m := srv.Messages()[0]
	if m.Subject != "Hello Zoë, 20% off" || m.Text != "Hello Zoë" || m.HTML != "<p>Hello <b>Zoë</b></p>" {
		t.Errorf("received %q / %q / %q", m.Subject, m.Text, m.HTML)
	}
}

func TestSMTPTemporaryFailureThenRetry(t *testing.T) {
	srv := smtptest.Start(t)
	s := newSender(t, mail.Config{URL: srv.URL(), Conns: 1})
	ctx := context.Background()

	srv.FailNext(1, 421, "4.3.0", "try again later")
	_, err := s.Send(ctx, message("d1", "ann@example.com"))
	var se *mail.SendError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T), want *SendError", err, err)
	}
	if !se.Temporary || se.Code != 421 || se.Enhanced != "4.3.0" || se.Text != "try again later" ||
		err.Error() != "421 4.3.0 try again later" || mail.IsPermanent(err) {
		t.Errorf("got %+v (%q)", *se, err)
	}

	srv.FailNext(1, 451, "", "local error")
	_, err = s.Send(ctx, message("d1", "ann@example.com"))
	if err == nil || err.Error() != "451 4.0.0 local error" || mail.IsPermanent(err) {
		t.Errorf("451: %v", err)
	}

	reply, err := s.Send(ctx, message("d1", "ann@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if reply != "250 2.0.0 OK: queued" || srv.Count() != 1 {
		t.Errorf("retry: reply %q, %d messages", reply, srv.Count())
	}
	// 421 means the server is closing: a new connection is made; 451 is not.
	if c := srv.Connections(); c != 2 {
		t.Errorf("%d connections, want 2", c)
	}
}

func TestSMTPPermanentFailures(t *testing.T) {
	srv := smtptest.Start(t)
	s := newSender(t, mail.Config{URL: srv.URL(), Conns: 1})
	ctx := context.Background()

	srv.Reject("gone@example.com", 550, "5.1.1 mailbox unavailable")
	_, err := s.Send(ctx, message("d1", "Gone <gone@example.com>"))
	var se *mail.SendError
	if !errors.As(err, &se) || se.Temporary || se.Code != 550 || !mail.IsPermanent(err) ||
		err.Error() != "550 5.1.1 mailbox unavailable" {
		t.Fatalf("rejected recipient: %v (%+v)", err, se)
	}

	srv.FailNext(1, 554, "5.7.1", "message refused")
	_, err = s.Send(ctx, message("d2", "ann@example.com"))
	if err == nil || err.Error() != "554 5.7.1 message refused" || !mail.IsPermanent(err) {
		t.Fatalf("refused message: %v", err)
	}

	srv.FailNextRcpt(1, 452, "4.2.2", "mailbox full")
	_, err = s.Send(ctx, message("d3", "ann@example.com"))
	if err == nil || err.Error() != "452 4.2.2 mailbox full" || mail.IsPermanent(err) {
		t.Fatalf("full mailbox: %v", err)
	}

	_, err = s.Send(ctx, message("d4", "bad address"))
	if !errors.Is(err, mail.ErrInvalidAddress) || !mail.IsPermanent(err) {
		t.Fatalf("invalid address: %v", err)
	}

	// The session stays usable after each refusal.
	if _, err := s.Send(ctx, message("d5", "ann@example.com")); err != nil {
		t.Fatal(err)
	}
	if srv.Count() != 1 || srv.Connections() != 1 {
		t.Errorf("%d messages over %d connections, want 1 over 1", srv.Count(), srv.Connections())
	}
}

func TestSMTPReconnectsAfterDrop(t *testing.T) {
	srv := smtptest.Start(t)
	s := newSender(t, mail.Config{URL: srv.URL(), Conns: 1})
	ctx := context.Background()
	if _, err := s.Send(ctx, message("d1", "ann@example.com")); err != nil {
		t.Fatal(err)
	}
	srv.DropConnections()
	if _, err := s.Send(ctx, message("d2", "ann@example.com")); err != nil {
		t.Fatalf("send after the server dropped the idle connection: %v", err)
	}
	if srv.Count() != 2 || srv.Connections() != 2 {
		t.Errorf("%d messages over %d connections, want 2 over 2", srv.Count(), srv.Connections())
	}
}

func TestSMTPMaxPerConn(t *testing.T) {
	srv := smtptest.Start(t)
	s := newSender(t, mail.Config{URL: srv.URL(), Conns: 1, MaxPerConn: 2})
	for i := range 5 {
		if _, err := s.Send(context.Background(), message(fmt.Sprint("d", i), "ann@example.com")); err != nil {
			t.Fatal(err)
		}
	}
	if c := srv.Connections(); c != 3 {
		t.Errorf("5 messages at 2 per connection used %d connections, want 3", c)
	}
}

func TestSMTPTLSAndAuth(t *testing.T) {
	for name, opts := range map[string][]smtptest.Option{
		"plain auth":     {smtptest.Auth("u", "p w")},
		"starttls":       {smtptest.StartTLS()},
		"starttls auth":  {smtptest.StartTLS(), smtptest.Auth("u", "p")},
		"implicit tls":   {smtptest.ImplicitTLS(), smtptest.Auth("u", "p")},
		"no tls no auth": nil,
	} {
		t.Run(name, func(t *testing.T) {
			srv := smtptest.Start(t, opts...)
			cfg := mail.Config{URL: srv.URL(), Conns: 1, Timeout: 5 * time.Second}
			if err := mail.Check(context.Background(), cfg); err != nil {
				t.Fatalf("Check %s: %v", srv.URL(), err)
			}
			s := newSender(t, cfg)
			if _, err := s.Send(context.Background(), message("d1", "ann@example.com")); err != nil {
				t.Fatal(err)
			}
			if srv.Count() != 1 {
				t.Errorf("%d messages", srv.Count())
			}
		})
	}
}

// Without tls=, STARTTLS is used when offered, and credentials are never
// sent in clear text.
func TestSMTPOpportunisticTLS(t *testing.T) {
	srv := smtptest.Start(t, smtptest.StartTLS(), smtptest.Auth("u", "p"))
	u := strings.Replace(srv.URL(), "tls=starttls&", "", 1)
	if err := mail.Check(context.Background(), mail.Config{URL: u}); err != nil {
		t.Errorf("STARTTLS offered: %v", err)
	}

	plain := smtptest.Start(t, smtptest.Auth("u", "p"))
	u = strings.Replace(plain.URL(), "?tls=none", "", 1)
	err := mail.Check(context.Background(), mail.Config{URL: u})
	if err == nil || !strings.Contains(err.Error(), "(tls=opportunistic): greeting/EHLO/STARTTLS/AUTH: ") {
		t.Errorf("AUTH over clear text without tls=none: %v", err)
	}
}

func TestCheckErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	start := time.Now()
	err = mail.Check(context.Background(), mail.Config{URL: "smtp://" + addr + "?tls=none"})
	if err == nil || !strings.HasPrefix(err.Error(), "SMTP server "+addr+" (tls=none): connect: ") {
		t.Errorf("closed port: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Check took %s", d)
	}

	srv := smtptest.Start(t, smtptest.Auth("u", "right"))
	u := strings.Replace(srv.URL(), "u:right@", "u:wrong@", 1)
	err = mail.Check(context.Background(), mail.Config{URL: u})
	if err == nil || !strings.Contains(err.Error(), "(tls=none): greeting/EHLO/STARTTLS/AUTH: SMTP AUTH failed: 535") ||
		!strings.Contains(err.Error(), "Authentication failed") ||
		strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong password: %v", err)
	}

	plain := smtptest.Start(t)
	err = mail.Check(context.Background(), mail.Config{URL: "smtp://" + plain.Addr() + "?tls=starttls"})
	if err == nil || !strings.Contains(err.Error(), "(tls=starttls): greeting/EHLO/STARTTLS/AUTH: ") ||
		!strings.Contains(err.Error(), "does not support STARTTLS") {
		t.Errorf("STARTTLS required but not offered: %v", err)
	}
}

func TestBadURL(t *testing.T) {
	for raw, want := range map[string]string{
		"ftp://h":                          `invalid SMTP URL: scheme "ftp", want smtp or smtps`,
		"smtp://":                          `invalid SMTP URL: no host, want smtp://[user:pass@]host[:port]`,
		"smtp:host":                        `invalid SMTP URL: no host, want smtp://[user:pass@]host[:port]`,
		"smtp://h?tls=yes":                 `invalid SMTP URL: tls="yes", want none, starttls or tls`,
		"smtps://h?tls=none":               `invalid SMTP URL: smtps:// is implicit TLS and contradicts tls=none`,
		"smtp://h?tsl=none":                `invalid SMTP URL: unknown parameter "tsl", want tls or insecure_skip_verify`,
		"smtp://h?insecure_skip_verify=ok": `invalid SMTP URL: insecure_skip_verify="ok", want true or false`,
		"smtp://u:secret@h:99999":          `invalid SMTP URL: port "99999"`,
		"smtp://h:x":                       `invalid SMTP URL: invalid port ":x" after host`,
		"smtp://u:secret@h:x":              `invalid SMTP URL: cannot parse it; percent-encode special characters in the user name and password`,
		"smtp://u:12/secret@h":             `invalid SMTP URL: '@' after the host; percent-encode special characters in the user name and password`,
		"smtp://:":                         `invalid SMTP URL: no host, want smtp://[user:pass@]host[:port]`,
		"smtp://h/path":                    `invalid SMTP URL: unexpected path "/path"`,
	} {
		_, err := mail.NewSender(context.Background(), mail.Config{URL: raw}, nil)
		if err == nil || err.Error() != want {
			t.Errorf("%s: error %v, want %q", raw, err, want)
		}
		if cerr := mail.Check(context.Background(), mail.Config{URL: raw}); cerr == nil || cerr.Error() != want {
			t.Errorf("Check %s: error %v", raw, cerr)
		}
	}
}

// A server that accepts connections and never greets. Each accepted
// connection is announced on the channel.
func silentServer(t *testing.T) (string, <-chan struct{}) {
	accepted := make(chan struct{}, 10)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			accepted <- struct{}{}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String(), accepted
}

func TestSMTPContext(t *testing.T) {
	addr, accepted := silentServer(t)
	s := newSender(t, mail.Config{URL: "smtp://" + addr + "?tls=none", Conns: 1, Timeout: time.Minute})

	// A send stuck in the SMTP exchange returns when its context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	stuck := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := s.Send(ctx, message("d1", "ann@example.com"))
		stuck <- err
	}()
	<-accepted

	// Meanwhile a second send waits for the only connection, and gives up
	// with its own context.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	_, err := s.Send(ctx2, message("d2", "ann@example.com"))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "wait for an SMTP connection: ") {
		t.Errorf("waiting send: %v", err)
	}

	err = <-stuck
	if !errors.Is(err, context.DeadlineExceeded) || mail.IsPermanent(err) {
		t.Errorf("stuck send: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancelled send took %s", d)
	}

	// An already cancelled context sends nothing.
	srv := smtptest.Start(t)
	s = newSender(t, mail.Config{URL: srv.URL(), Conns: 1})
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := s.Send(ctx, message("d3", "ann@example.com")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if srv.Count() != 0 {
		t.Errorf("a cancelled send was delivered")
	}
}

func TestSMTPClose(t *testing.T) {
	srv := smtptest.Start(t)
	s, err := mail.NewSender(context.Background(), mail.Config{URL: srv.URL(), Conns: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(context.Background(), message("d1", "ann@example.com")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(context.Background(), message("d2", "ann@example.com")); !errors.Is(err, mail.ErrClosed) {
		t.Errorf("send after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// BenchmarkSMTPSend sends to the in-process server from many goroutines
// over the default pool, reporting messages per second.
func BenchmarkSMTPSend(b *testing.B) {
	srv := smtptest.Start(b, smtptest.Discard())
	s := newSender(b, mail.Config{URL: srv.URL()})
	m := message("bench", "ann@example.com")
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Send(context.Background(), m); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(srv.Connections()), "conns")
}

func readEML(t *testing.T, path string) *netmail.Message {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	msg, err := netmail.ReadMessage(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return msg
}

// alternatives decodes a multipart/alternative body into its parts by type.
func alternatives(t *testing.T, msg *netmail.Message) map[string]string {
	t.Helper()
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	parts := map[string]string{}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return parts
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		parts[ct] = string(b)
	}
}
