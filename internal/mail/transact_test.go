package mail_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"nurture/internal/mail"
	"nurture/internal/smtptest"
)

// servers are the two kinds of server the mail transaction meets: one
// that offers PIPELINING and 8BITMIME, and one that offers neither.
var servers = map[string][]smtptest.Option{
	"pipelining":    nil,
	"no pipelining": {smtptest.Hide("PIPELINING", "8BITMIME")},
}

// TestSMTPReplies checks that every refusal is classified the same with
// and without pipelining, and that the session is kept or replaced as the
// reply asks.
func TestSMTPReplies(t *testing.T) {
	for name, opts := range servers {
		t.Run(name, func(t *testing.T) {
			srv := smtptest.Start(t, opts...)
			s := newSender(t, mail.Config{URL: srv.URL(), Conns: 1})
			ctx := context.Background()
			send := func(id string) error {
				_, err := s.Send(ctx, message(id, "ann@example.com"))
				return err
			}
			if err := send("d0"); err != nil {
				t.Fatal(err)
			}
			for i, tt := range []struct {
				what      string
				fail      func()
				want      string // the error; "" for none
				permanent bool
				conns     int // connections made so far, after the send
			}{
				{"5xx on RCPT", func() { srv.FailNextRcpt(1, 550, "5.1.1", "mailbox unavailable") },
					"550 5.1.1 mailbox unavailable", true, 1},
				{"4xx on RCPT", func() { srv.FailNextRcpt(1, 452, "4.2.2", "mailbox full") },
					"452 4.2.2 mailbox full", false, 1},
				{"4xx on MAIL", func() { srv.FailNextMail(1, 451, "4.3.0", "try again later") },
					"451 4.3.0 try again later", false, 1},
				{"5xx on MAIL", func() { srv.FailNextMail(1, 553, "5.7.1", "sender refused") },
					"553 5.7.1 sender refused", true, 1},
				{"5xx at the end of DATA", func() { srv.FailNext(1, 554, "5.7.1", "message refused") },
					"554 5.7.1 message refused", true, 1},
				{"accepted after refusals", func() {}, "", false, 1},
				// A reused connection that meets 421 at MAIL FROM is replaced
				// once; a second 421 is the answer.
				{"421 on MAIL, then accepted", func() { srv.FailNextMail(1, 421, "4.3.2", "closing") },
					"", false, 2},
				{"421 on MAIL twice", func() { srv.FailNextMail(2, 421, "4.3.2", "closing") },
					"421 4.3.2 closing", false, 3},
				{"after 421, a new connection", func() {}, "", false, 4},
				{"421 at the end of DATA", func() { srv.FailNext(1, 421, "4.4.2", "timeout") },
					"421 4.4.2 timeout", false, 4},
				{"after 421 at the end of DATA, a new connection", func() {}, "", false, 5},
			} {
				tt.fail()
				err := send(fmt.Sprintf("d%d", i+1))
				switch {
				case tt.want == "" && err != nil:
					t.Errorf("%s: %v", tt.what, err)
				case tt.want != "" && (err == nil || err.Error() != tt.want || mail.IsPermanent(err) != tt.permanent):
					t.Errorf("%s: error %v (permanent %t), want %q (permanent %t)", tt.what, err, mail.IsPermanent(err), tt.want, tt.permanent)
				}
				var se *mail.SendError
				if tt.want != "" && !errors.As(err, &se) {
					t.Errorf("%s: %T, want *SendError", tt.what, err)
				}
				if c := srv.Connections(); c != tt.conns {
					t.Errorf("%s: %d connections, want %d", tt.what, c, tt.conns)
				}
			}
			if got := srv.Count(); got != 5 {
				t.Errorf("%d messages accepted, want 5", got)
			}
			for _, m := range srv.Messages() {
				if m.Subject != "Hello Zoë, 20% off" || m.Text != "Hello Zoë" || m.HTML != "<p>Hello <b>Zoë</b></p>" {
					t.Errorf("received %q / %q / %q", m.Subject, m.Text, m.HTML)
				}
			}
		})
	}
}

// TestSMTPBodies checks the encoding of each part, as the server offers
// 8BITMIME or not, and that the parts arrive intact, dots and all, and
// DKIM-signed so that dkimpy verifies them.
func TestSMTPBodies(t *testing.T) {
	dk := loadDKIM(t)
	longLine := strings.Repeat("Zoë ", 300) // 1,500 octets
	for name, opts := range servers {
		t.Run(name, func(t *testing.T) {
			srv := smtptest.Start(t, opts...)
			s := newSender(t, mail.Config{URL: srv.URL(), Conns: 1, DKIM: dk})
			ascii := message("ascii", "ann@example.org")
			ascii.Text, ascii.HTML = "Hello Ann,\n.\n..two dots\n", "<p>Hello</p>\r\n.<p>dot</p>"
			utf := message("utf8", "ann@example.org")
			utf.HTML = "<p>Zoë</p>\n." + longLine + "\n"
			// The first message tells the pool what the server offers.
			for _, m := range []*mail.Message{message("first", "ann@example.org"), ascii, utf} {
				if _, err := s.Send(context.Background(), m); err != nil {
					t.Fatal(err)
				}
			}
			got := srv.Messages()
			if len(got) != 3 {
				t.Fatalf("%d messages", len(got))
			}
			unencoded := "8bit"
			if name == "no pipelining" {
				unencoded = "quoted-printable"
			}
			for i, tt := range []struct {
				m         *mail.Message
				encodings []string // of the text part, then the html part
			}{
				{ascii, []string{"7bit", "7bit"}},
				// The long line has to be quoted-printable.
				{utf, []string{unencoded, "quoted-printable"}},
			} {
				r := got[i+1]
				if r.MessageID != tt.m.MessageID {
					t.Fatalf("message %d is %s", i+1, r.MessageID)
				}
				var encodings []string
				for line := range strings.SplitSeq(string(r.Data), "\r\n") {
					if v, ok := strings.CutPrefix(line, "Content-Transfer-Encoding: "); ok {
						encodings = append(encodings, v)
					}
				}
				if fmt.Sprint(encodings) != fmt.Sprint(tt.encodings) {
					t.Errorf("%s: encodings %v, want %v", r.MessageID, encodings, tt.encodings)
				}
				crlf := strings.NewReplacer("\r\n", "\n")
				if crlf.Replace(r.Text) != crlf.Replace(tt.m.Text) || crlf.Replace(r.HTML) != crlf.Replace(tt.m.HTML) {
					t.Errorf("%s: received text %q and html %q\nwant %q and %q", r.MessageID, r.Text, r.HTML, tt.m.Text, tt.m.HTML)
				}
				for line := range strings.SplitSeq(string(r.Data), "\r\n") {
					if len(line) > 998 {
						t.Errorf("%s: a line of %d octets", r.MessageID, len(line))
					}
				}
			}
			ok, why := verify(t, dk, "example.com", got[1].Data, got[2].Data)
			if !ok[0] || !ok[1] {
				t.Errorf("DKIM verified %v:\n%s", ok, why)
			}
		})
	}
}

// TestSMTPPipelining plays a server that offers PIPELINING and answers
// nothing until it has MAIL FROM, RCPT TO and DATA: a client that waited
// for each reply would never get one. The second message's recipient is
// refused: the client must then send no message, only RSET.
func TestSMTPPipelining(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	script := make(chan error, 1)
	go func() { script <- playPipelining(ln) }()

	s := newSender(t, mail.Config{URL: "smtp://" + ln.Addr().String() + "?tls=none", Conns: 1, Timeout: 5 * time.Second})
	ctx := context.Background()
	reply, err := s.Send(ctx, message("d1", "ann@example.com"))
	if err != nil || reply != "250 2.0.0 queued as A1" {
		t.Fatalf("first message: %q, %v", reply, err)
	}
	_, err = s.Send(ctx, message("d2", "gone@example.com"))
	if err == nil || err.Error() != "550 5.1.1 no such user" || !mail.IsPermanent(err) {
		t.Fatalf("refused recipient: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-script; err != nil {
		t.Fatal(err)
	}
}

// playPipelining serves one connection as TestSMTPPipelining says.
func playPipelining(ln net.Listener) error {
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	w := func(s string) error { _, err := c.Write([]byte(s)); return err }
	read := func() (string, error) {
		line, err := r.ReadString('\n')
		return strings.TrimSuffix(line, "\r\n"), err
	}
	// expect reads len(want) lines before answering any of them.
	expect := func(want ...string) error {
		for _, prefix := range want {
			line, err := read()
			if err != nil {
				return fmt.Errorf("waiting for %q: %w", prefix, err)
			}
			if !strings.HasPrefix(line, prefix) {
				return fmt.Errorf("got %q, want %q", line, prefix)
			}
		}
		return nil
	}
	if err := w("220 script ESMTP\r\n"); err != nil {
		return err
	}
	if err := expect("EHLO "); err != nil {
		return err
	}
	if err := w("250-script\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"); err != nil {
		return err
	}
	if err := expect("MAIL FROM:<hello@example.com> BODY=8BITMIME", "RCPT TO:<ann@example.com>", "DATA"); err != nil {
		return err
	}
	if err := w("250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n"); err != nil {
		return err
	}
	for {
		line, err := read()
		if err != nil {
			return fmt.Errorf("reading the message: %w", err)
		}
		if line == "." {
			break
		}
	}
	if err := w("250 2.0.0 queued as A1\r\n"); err != nil {
		return err
	}
	// No RSET after a message accepted: the next transaction follows.
	if err := expect("MAIL FROM:", "RCPT TO:<gone@example.com>", "DATA"); err != nil {
		return err
	}
	if err := w("250 2.1.0 ok\r\n550 5.1.1 no such user\r\n554 5.5.1 no valid recipients\r\n"); err != nil {
		return err
	}
	if err := expect("RSET"); err != nil {
		return err
	}
	if err := w("250 2.0.0 ok\r\n"); err != nil {
		return err
	}
	if err := expect("QUIT"); err != nil {
		return err
	}
	return w("221 2.0.0 bye\r\n")
}

// TestSMTPPipeliningAcrossMessages plays a server that answers nothing
// about a message until it has read the envelope of the send that was
// waiting as the message went out: the client must write that envelope
// behind the message's final dot, not wait for its reply. The second
// message is refused at its final dot while a third waits; the session
// stays in step without RSET, and the third is accepted.
func TestSMTPPipeliningAcrossMessages(t *testing.T) {
	read, next := make(chan struct{}), make(chan struct{})
	url, script := scriptServer(t, func(_ net.Conn, line func() (string, error), w func(string) error) error {
		return playPipeliningAcross(line, w, read, next)
	})
	// step waits for the server to read an envelope, failing the test
	// if the server's script ends first.
	step := func() {
		t.Helper()
		select {
		case <-read:
		case err := <-script:
			t.Fatalf("the server's script ended early: %v", err)
		}
	}

	s := newSender(t, mail.WithQueue(mail.Config{URL: url, Conns: 1, Timeout: 5 * time.Second}, 1))
	ctx := context.Background()
	type res struct {
		reply string
		err   error
	}
	send := func(id, to string) chan res {
		ch := make(chan res, 1)
		go func() {
			reply, err := s.Send(ctx, message(id, to))
			ch <- res{reply, err}
		}()
		return ch
	}
	// waitQueued lets a send wait for the connection before the server
	// answers the envelope in flight.
	waitQueued := func() {
		t.Helper()
		for i := 0; mail.QueuedSends(s) != 1; i++ {
			if i == 5000 {
				t.Fatal("the send never waited for the connection")
			}
			time.Sleep(time.Millisecond)
		}
	}
	first := send("d1", "ann@example.com")
	step()
	second := send("d2", "bob@example.com")
	waitQueued()
	next <- struct{}{}
	step()
	third := send("d3", "cy@example.com")
	waitQueued()
	next <- struct{}{}

	if r := <-first; r.err != nil || r.reply != "250 2.0.0 queued as A1" {
		t.Errorf("first message: %q, %v", r.reply, r.err)
	}
	if r := <-second; r.err == nil || r.err.Error() != "554 5.7.1 no thanks" || !mail.IsPermanent(r.err) {
		t.Errorf("second message: %q, %v; want refused for good", r.reply, r.err)
	}
	if r := <-third; r.err != nil || r.reply != "250 2.0.0 queued as A3" {
		t.Errorf("third message: %q, %v", r.reply, r.err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-script; err != nil {
		t.Fatal(err)
	}
}

// playPipeliningAcross plays the server of
// TestSMTPPipeliningAcrossMessages after EHLO. It tells read when it has
// read an envelope it has not answered, and answers once next says a send
// waits.
func playPipeliningAcross(line func() (string, error), w func(string) error, read, next chan struct{}) error {
	// message reads a message up to its final dot; RSET in it means the
	// client reset the session there.
	message := func() error {
		for {
			l, err := line()
			if err != nil {
				return fmt.Errorf("reading a message: %w", err)
			}
			if l == "RSET" {
				return fmt.Errorf("RSET where a message was due")
			}
			if l == "." {
				return nil
			}
		}
	}
	envelope := func(to string) error {
		return expectLines(line, "MAIL FROM:<hello@example.com>", "RCPT TO:<"+to+">", "DATA")
	}
	if err := envelope("ann@example.com"); err != nil {
		return err
	}
	read <- struct{}{}
	<-next
	if err := w("250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n"); err != nil {
		return err
	}
	// The first message, then the second's envelope, before any reply.
	if err := message(); err != nil {
		return err
	}
	if err := envelope("bob@example.com"); err != nil {
		return fmt.Errorf("the waiting send's envelope did not follow the message: %w", err)
	}
	read <- struct{}{}
	<-next
	if err := w("250 2.0.0 queued as A1\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n"); err != nil {
		return err
	}
	if err := message(); err != nil {
		return err
	}
	if err := envelope("cy@example.com"); err != nil {
		return fmt.Errorf("the waiting send's envelope did not follow the message: %w", err)
	}
	if err := w("554 5.7.1 no thanks\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n"); err != nil {
		return err
	}
	if err := message(); err != nil {
		return err
	}
	if err := w("250 2.0.0 queued as A3\r\n"); err != nil {
		return err
	}
	if err := expectLines(line, "QUIT"); err != nil {
		return err
	}
	return w("221 2.0.0 bye\r\n")
}

// expectLines reads len(want) lines, each starting with its prefix.
func expectLines(line func() (string, error), want ...string) error {
	for _, prefix := range want {
		l, err := line()
		if err != nil {
			return fmt.Errorf("waiting for %q: %w", prefix, err)
		}
		if !strings.HasPrefix(l, prefix) {
			return fmt.Errorf("got %q, want %q", l, prefix)
		}
	}
	return nil
}

// scriptServer accepts one connection and runs play on it with helpers,
// sending play's error on the returned channel.
func scriptServer(t *testing.T, play func(c net.Conn, line func() (string, error), w func(string) error) error) (string, chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		line := func() (string, error) {
			l, err := r.ReadString('\n')
			return strings.TrimSuffix(l, "\r\n"), err
		}
		w := func(s string) error { _, err := c.Write([]byte(s)); return err }
		if err := w("220 script ESMTP\r\n"); err != nil {
			done <- err
			return
		}
		if l, err := line(); err != nil || !strings.HasPrefix(l, "EHLO ") {
			done <- fmt.Errorf("want EHLO, got %q, %v", l, err)
			return
		}
		if err := w("250-script\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"); err != nil {
			done <- err
			return
		}
		done <- play(c, line, w)
	}()
	return "smtp://" + ln.Addr().String() + "?tls=none", done
}

// skipTo reads lines until one starts with prefix.
func skipTo(line func() (string, error), prefix string) error {
	for {
		l, err := line()
		if err != nil {
			return fmt.Errorf("waiting for %q: %w", prefix, err)
		}
		if strings.HasPrefix(l, prefix) {
			return nil
		}
	}
}

// TestSMTPQueuedSendGivenUp: a send whose envelope went out behind another
// message, and whose context ends before that message's reply, returns at
// once as one that never got a connection; its envelope is undone by
// closing the session, and the other message is still reported sent.
func TestSMTPQueuedSendGivenUp(t *testing.T) {
	read, queued, reply := make(chan struct{}), make(chan struct{}), make(chan struct{})
	url, script := scriptServer(t, func(c net.Conn, line func() (string, error), w func(string) error) error {
		if err := skipTo(line, "DATA"); err != nil {
			return err
		}
		read <- struct{}{}
		<-reply // a second send waits
		if err := w("250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n"); err != nil {
			return err
		}
		if err := skipTo(line, "."); err != nil {
			return err
		}
		if err := skipTo(line, "DATA"); err != nil {
			return fmt.Errorf("the waiting send's envelope: %w", err)
		}
		queued <- struct{}{}
		<-reply // the second send was given up
		if err := w("250 2.0.0 queued as A1\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n"); err != nil {
			return err
		}
		if l, err := line(); err != io.EOF {
			return fmt.Errorf("after the given-up envelope: %q, %v; want the session closed", l, err)
		}
		return nil
	})
	s := newSender(t, mail.WithQueue(mail.Config{URL: url, Conns: 1, Timeout: 5 * time.Second}, 1))
	first := make(chan error, 1)
	go func() {
		_, err := s.Send(context.Background(), message("d1", "ann@example.com"))
		first <- err
	}()
	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	select {
	case <-read:
	case err := <-script:
		t.Fatalf("the server's script ended early: %v", err)
	}
	go func() {
		_, err := s.Send(ctx, message("d2", "bob@example.com"))
		second <- err
	}()
	for i := 0; mail.QueuedSends(s) != 1; i++ {
		if i == 5000 {
			t.Fatal("the second send never waited")
		}
		time.Sleep(time.Millisecond)
	}
	reply <- struct{}{}
	select {
	case <-queued:
	case err := <-script:
		t.Fatalf("the server's script ended early: %v", err)
	}
	cancel()
	select {
	case err := <-second:
		if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "wait for an SMTP connection: ") {
			t.Errorf("given-up send: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the given-up send waited for the other message's reply")
	}
	reply <- struct{}{}
	if err := <-first; err != nil {
		t.Errorf("first send: %v", err)
	}
	if err := <-script; err != nil {
		t.Fatal(err)
	}
}

// TestSMTPDataAfterRefusedRecipient: a server that refuses the recipient
// but still answers DATA with 354 waits for a message; the client closes
// the session instead of sending it anything, and reports the refusal.
func TestSMTPDataAfterRefusedRecipient(t *testing.T) {
	url, script := scriptServer(t, func(c net.Conn, line func() (string, error), w func(string) error) error {
		if err := skipTo(line, "DATA"); err != nil {
			return err
		}
		if err := w("250 2.1.0 ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n"); err != nil {
			return err
		}
		if l, err := line(); err != io.EOF {
			return fmt.Errorf("after 354: %q, %v; want the session closed", l, err)
		}
		return nil
	})
	s := newSender(t, mail.Config{URL: url, Conns: 1, Timeout: 5 * time.Second})
	_, err := s.Send(context.Background(), message("d1", "gone@example.com"))
	if err == nil || err.Error() != "550 5.1.1 no such user" || !mail.IsPermanent(err) {
		t.Errorf("send: %v, want the refusal", err)
	}
	if err := <-script; err != nil {
		t.Fatal(err)
	}
}
