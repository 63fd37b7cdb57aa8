package smtptest_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"nurture/internal/smtptest"
)

const multipartMsg = "From: Shop <hello@example.com>\r\n" +
	"To: ann@example.com\r\n" +
	"Subject: =?UTF-8?q?Hello_Zo=C3=AB?=\r\n" +
	"Message-ID: <d1@example.com>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/alternative; boundary=b1\r\n" +
	"\r\n" +
	"--b1\r\n" +
	"Content-Type: text/plain; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"Hello Zo=C3=AB, a long line that is soft=\r\n" +
	" broken\r\n" +
	"--b1\r\n" +
	"Content-Type: text/html; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"PHA+SGVsbG8g\r\n" +
	"Wm/DqzwvcD4=\r\n" +
	"--b1--\r\n"

func send(t *testing.T, c *smtp.Client, to string) error {
	t.Helper()
	return c.SendMail("hello@example.com", []string{to}, strings.NewReader(multipartMsg))
}

func dial(t *testing.T, s *smtptest.Server) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestReceive(t *testing.T) {
	s := smtptest.Start(t)
	if !strings.HasPrefix(s.URL(), "smtp://127.0.0.1:") || !strings.HasSuffix(s.URL(), "?tls=none") {
		t.Errorf("URL %q", s.URL())
	}
	c := dial(t, s)
	for range 3 {
		if err := send(t, c, "ann@example.com"); err != nil {
			t.Fatal(err)
		}
	}
	s.WaitFor(t, 3, time.Second)
	msgs := s.Messages()
	if len(msgs) != 3 || s.Count() != 3 || s.Connections() != 1 {
		t.Fatalf("%d messages, count %d, %d connections", len(msgs), s.Count(), s.Connections())
	}
	m := msgs[0]
	want := smtptest.Received{
		From: "hello@example.com", To: []string{"ann@example.com"}, Data: m.Data,
		MessageID: "<d1@example.com>", Subject: "Hello Zoë",
		Text: "Hello Zoë, a long line that is soft broken", HTML: "<p>Hello Zoë</p>",
	}
	if m.From != want.From || strings.Join(m.To, ",") != "ann@example.com" || m.MessageID != want.MessageID ||
		m.Subject != want.Subject || m.Text != want.Text || m.HTML != want.HTML {
		t.Errorf("received\n%+v\nwant\n%+v", m, want)
	}
}

func TestFaults(t *testing.T) {
	s := smtptest.Start(t)
	c := dial(t, s)

	s.FailNext(2, 451, "4.3.0", "try later")
	for range 2 {
		err := send(t, c, "ann@example.com")
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 451 || se.EnhancedCode != (smtp.EnhancedCode{4, 3, 0}) || se.Message != "try later" {
			t.Fatalf("FailNext: %v", err)
		}
	}
	s.FailNextRcpt(1, 550, "", "no")
	if err := send(t, c, "ann@example.com"); err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("FailNextRcpt: %v", err)
	}
	s.Reject("Gone@Example.com", 550, "5.1.1 mailbox unavailable")
	err := send(t, c, "gone@example.com")
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 1, 1}) || se.Message != "mailbox unavailable" {
		t.Fatalf("Reject: %v", err)
	}
	if err := send(t, c, "ann@example.com"); err != nil {
		t.Fatal(err)
	}
	if s.Count() != 1 {
		t.Errorf("count %d, want 1", s.Count())
	}
	// DATA answers are timed: the two 451s, then the one accepted; RCPT
	// refusals never reach DATA.
	var codes []int
	atts := s.Attempts()
	for i, a := range atts {
		codes = append(codes, a.Code)
		if a.At.IsZero() || (i > 0 && a.At.Before(atts[i-1].At)) || strings.Join(a.To, ",") != "ann@example.com" {
			t.Errorf("attempt %d: %+v", i, a)
		}
	}
	if fmt.Sprint(codes) != "[451 451 250]" {
		t.Errorf("attempt codes %v, want [451 451 250]", codes)
	}
	if m := s.Messages(); len(m) != 1 || !m[0].At.Equal(atts[2].At) {
		t.Errorf("accepted message's time differs from its attempt's: %+v", m)
	}
}

func TestDiscardAndConnections(t *testing.T) {
	s := smtptest.Start(t, smtptest.Discard())
	for range 3 {
		c := dial(t, s)
		if err := send(t, c, "ann@example.com"); err != nil {
			t.Fatal(err)
		}
	}
	s.WaitFor(t, 3, time.Second)
	if len(s.Messages()) != 0 || s.Count() != 3 || s.Connections() != 3 {
		t.Errorf("%d kept, count %d, %d connections", len(s.Messages()), s.Count(), s.Connections())
	}
}

func TestMessageIDs(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []smtptest.Option
	}{{"keep", nil}, {"discard", []smtptest.Option{smtptest.Discard()}}} {
		t.Run(tc.name, func(t *testing.T) {
			s := smtptest.Start(t, tc.opts...)
			c := dial(t, s)
			other := strings.Replace(multipartMsg, "<d1@example.com>", "<d2@example.com>", 1)
			bare := strings.Replace(multipartMsg, "Message-ID: <d1@example.com>\r\n", "", 1)
			for _, m := range []string{multipartMsg, other, multipartMsg, bare} {
				if err := c.SendMail("hello@example.com", []string{"ann@example.com"}, strings.NewReader(m)); err != nil {
					t.Fatal(err)
				}
			}
			// A refused message is not counted.
			s.FailNext(1, 451, "4.3.0", "try later")
			if err := send(t, c, "ann@example.com"); err == nil {
				t.Fatal("FailNext: message accepted")
			}
			s.WaitFor(t, 4, time.Second)
			got := s.MessageIDs()
			want := map[string]int{"<d1@example.com>": 2, "<d2@example.com>": 1, "": 1}
			if !maps.Equal(got, want) {
				t.Errorf("MessageIDs = %v, want %v", got, want)
			}
		})
	}
}

func TestDropConnections(t *testing.T) {
	s := smtptest.Start(t)
	c := dial(t, s)
	if err := c.Noop(); err != nil {
		t.Fatal(err)
	}
	s.DropConnections()
	if err := c.Noop(); err == nil {
		t.Error("connection survived DropConnections")
	}
}

func TestNewClose(t *testing.T) {
	s, err := smtptest.New(smtptest.StartTLS(), smtptest.Auth("u", "p"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "smtp://u:p@" + s.Addr() + "?tls=starttls&insecure_skip_verify=true"; s.URL() != want {
		t.Errorf("URL %q, want %q", s.URL(), want)
	}
	s.Close()
	if _, err := smtp.Dial(s.Addr()); err == nil {
		t.Error("server still accepts after Close")
	}
	s2, err := smtptest.New(smtptest.ImplicitTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if want := "smtps://" + s2.Addr() + "?insecure_skip_verify=true"; s2.URL() != want {
		t.Errorf("URL %q, want %q", s2.URL(), want)
	}
}

func TestHide(t *testing.T) {
	for name, opts := range map[string][]smtptest.Option{
		"plain":        {smtptest.Hide("PIPELINING", "8bitmime")},
		"implicit tls": {smtptest.Hide("PIPELINING", "8bitmime"), smtptest.ImplicitTLS()},
	} {
		t.Run(name, func(t *testing.T) {
			s := smtptest.Start(t, opts...)
			var c *smtp.Client
			var err error
			if name == "plain" {
				c, err = smtp.Dial(s.Addr())
			} else {
				c, err = smtp.DialTLS(s.Addr(), &tls.Config{InsecureSkipVerify: true})
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Hello("localhost"); err != nil {
				t.Fatal(err)
			}
			for ext, want := range map[string]bool{"PIPELINING": false, "8BITMIME": false, "ENHANCEDSTATUSCODES": true, "SIZE": true} {
				if got, _ := c.Extension(ext); got != want {
					t.Errorf("%s offered: %t, want %t", ext, got, want)
				}
			}
			if err := send(t, c, "ann@example.com"); err != nil {
				t.Fatal(err)
			}
		})
	}
	c := dial(t, smtptest.Start(t))
	if ok, _ := c.Extension("PIPELINING"); !ok {
		t.Error("PIPELINING not offered by default")
	}
}

func TestFailNextMail(t *testing.T) {
	s := smtptest.Start(t)
	c := dial(t, s)
	s.FailNextMail(1, 421, "4.4.5", "too busy")
	err := send(t, c, "ann@example.com")
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 421 || se.EnhancedCode != (smtp.EnhancedCode{4, 4, 5}) || se.Message != "too busy" {
		t.Fatalf("FailNextMail: %v", err)
	}
	if err := send(t, c, "ann@example.com"); err != nil {
		t.Fatal(err)
	}
	if s.Count() != 1 {
		t.Errorf("count %d, want 1", s.Count())
	}
}

// TestHold: while held, the server reads messages but keeps its replies,
// and counts them; Release answers them all.
func TestHold(t *testing.T) {
	s := smtptest.Start(t)
	s.Hold()
	c := dial(t, s)
	done := make(chan error, 1)
	go func() {
		done <- c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
	}()
	for s.Held() == 0 {
		select {
		case err := <-done:
			t.Fatalf("send ended while held: %v", err)
		default:
			time.Sleep(5 * time.Millisecond)
		}
	}
	if n := s.Count(); n != 0 {
		t.Errorf("%d messages accepted while held, want 0", n)
	}
	s.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n, h := s.Count(), s.Held(); n != 1 || h != 0 {
		t.Errorf("after Release: %d accepted, %d held; want 1 and 0", n, h)
	}
}
