package mail

import (
	"errors"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/wneessen/go-mail/smtp"
)

// extensions are the ESMTP extensions of a server that the mail
// transaction uses.
type extensions struct {
	pipelining    bool // RFC 2920: commands sent in one write
	eightBitMIME  bool // RFC 6152: 8bit parts, MAIL FROM ... BODY=8BITMIME
	smtpUTF8      bool // RFC 6531: MAIL FROM ... SMTPUTF8
	enhancedCodes bool // RFC 2034: replies start with codes such as 5.1.1
}

func serverExtensions(s *smtp.Client) extensions {
	has := func(name string) bool { ok, _ := s.Extension(name); return ok }
	return extensions{
		pipelining:    has("PIPELINING"),
		eightBitMIME:  has("8BITMIME"),
		smtpUTF8:      has("SMTPUTF8"),
		enhancedCodes: has("ENHANCEDSTATUSCODES"),
	}
}

// Steps of a mail transaction, as stepError names them.
const (
	stepMail = "MAIL FROM"
	stepRcpt = "RCPT TO"
	stepData = "DATA"
	stepEnd  = "end of DATA"
)

// stepError is a failed step of a mail transaction: Err is the server's
// reply (*textproto.Error), or the I/O error when there was none.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return "SMTP " + e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// transact sends r on c's session, the server having said EHLO and
// whatever TLS and AUTH asked: MAIL FROM, RCPT TO and DATA, the message,
// the final dot. With PIPELINING the three commands go in one write and
// their replies are read after it; without, each waits for its reply.
// The message and its final dot go in one write. It returns the final
// reply when the server took the message, else a *stepError for the first
// step that failed; the session then needs RSET, or dropping when the
// connection broke. A transaction that succeeded needs no RSET: it ended
// with the final reply.
func (c *conn) transact(r *rendered, timeout time.Duration) (string, error) {
	t := c.session.Text
	if err := c.raw.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", &stepError{stepMail, err}
	}

	cmds := c.out[:0]
	cmds = append(cmds, "MAIL FROM:"...)
	cmds = append(cmds, r.from...)
	if c.ext.eightBitMIME {
		cmds = append(cmds, " BODY=8BITMIME"...)
	}
	if c.ext.smtpUTF8 {
		cmds = append(cmds, " SMTPUTF8"...)
	}
	cmds = append(cmds, "\r\n"...)
	rcpt := len(cmds)
	cmds = append(cmds, "RCPT TO:"...)
	cmds = append(cmds, r.rcpt...)
	cmds = append(cmds, "\r\n"...)
	data := len(cmds)
	cmds = append(cmds, "DATA\r\n"...)
	c.out = cmds

	steps := []struct {
		name   string
		cmd    []byte
		expect int
	}{
		{stepMail, cmds[:rcpt], 2},
		{stepRcpt, cmds[rcpt:data], 2},
		{stepData, cmds[data:], 354},
	}
	var failed error
	if c.ext.pipelining {
		if err := write(t, cmds); err != nil {
			return "", &stepError{stepMail, err}
		}
		// Every reply is read, so that the session stays in step even
		// after a refusal.
		for _, s := range steps {
			_, _, err := t.ReadResponse(s.expect)
			if err != nil && failed == nil {
				failed = &stepError{s.name, err}
			}
			if err != nil && !isReply(err) {
				return "", failed
			}
		}
	} else {
		for _, s := range steps {
			if err := write(t, s.cmd); err != nil {
				return "", &stepError{s.name, err}
			}
			if _, _, err := t.ReadResponse(s.expect); err != nil {
				return "", &stepError{s.name, err}
			}
		}
	}
	if failed != nil {
		var te *textproto.Error
		if errors.As(failed, &te) && te.Code == 354 {
			// Not reached with a server that follows RFC 2920, which refuses
			// DATA after a refused RCPT. End the empty message it expects;
			// it has no recipient to go to.
			if err := write(t, []byte(".\r\n")); err == nil {
				_, _, _ = t.ReadResponse(2)
			}
		}
		return "", failed
	}

	out := c.out[:0]
	out = appendDotStuffed(out, []byte(r.sig))
	out = appendDotStuffed(out, r.data.Bytes())
	out = append(out, ".\r\n"...)
	c.out = out
	if err := write(t, out); err != nil {
		return "", &stepError{stepEnd, err}
	}
	code, msg, err := t.ReadResponse(2)
	if err != nil {
		return "", &stepError{stepEnd, err}
	}
	return strconv.Itoa(code) + " " + msg, nil
}

// write writes b to the session in one go: bufio writes a slice at least
// as long as its buffer straight through when nothing is buffered.
func write(t *textproto.Conn, b []byte) error {
	if _, err := t.W.Write(b); err != nil {
		return err
	}
	return t.W.Flush()
}

// isReply reports whether err is the server's reply rather than a broken
// connection or a reply that could not be read.
func isReply(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te)
}

// enhancedCode finds an RFC 3463 enhanced status code in a reply.
var enhancedCode = regexp.MustCompile(`\b[245]\.\d{1,3}\.\d{1,3}\b`)

// classify turns the error of a mail transaction into a SendError: a
// 4xx reply is temporary, a 5xx reply permanent, no reply temporary.
// Enhanced codes are read only from a server that announced them.
func classify(err error, enhancedCodes bool) *SendError {
	var te *textproto.Error
	if !errors.As(err, &te) {
		return temporary(err, "send")
	}
	se := &SendError{Code: te.Code, Text: te.Msg, Err: err, Temporary: te.Code < 500}
	if enhancedCodes {
		se.Enhanced = enhancedCode.FindString(te.Msg)
		if se.Enhanced != "" {
			se.Text = strings.TrimPrefix(se.Text, se.Enhanced+" ")
		}
	}
	return se
}

// stale reports whether a failure on a reused connection looks like the
// server having dropped it before this message: MAIL FROM failed without a
// reply, or with 421 (closing).
func stale(se *SendError) bool {
	var step *stepError
	return errors.As(se.Err, &step) && step.step == stepMail && (se.Code == 0 || se.Code == 421)
}
