package mail

import (
	"bytes"
	"errors"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"

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

// appendEnvelope appends r's MAIL FROM, RCPT TO and DATA commands to b.
func (c *conn) appendEnvelope(b []byte, r *rendered) []byte {
	b = append(b, "MAIL FROM:"...)
	b = append(b, r.from...)
	if c.ext.eightBitMIME {
		b = append(b, " BODY=8BITMIME"...)
	}
	if c.ext.smtpUTF8 {
		b = append(b, " SMTPUTF8"...)
	}
	b = append(b, "\r\n"...)
	b = append(b, "RCPT TO:"...)
	b = append(b, r.rcpt...)
	b = append(b, "\r\nDATA\r\n"...)
	return b
}

// envelopeSteps are the commands of an envelope in order, with the reply
// each expects.
var envelopeSteps = [...]struct {
	name   string
	expect int
}{{stepMail, 2}, {stepRcpt, 2}, {stepData, 354}}

// readEnvelope reads the replies to an envelope sent in one write. Every
// reply is read, so that the session stays in step even after a refusal;
// the first failure is returned as a *stepError.
func (c *conn) readEnvelope() error {
	t := c.session.Text
	var failed error
	c.dataOpen = false
	for _, s := range envelopeSteps {
		_, _, err := t.ReadResponse(s.expect)
		if err != nil && failed == nil {
			failed = &stepError{s.name, err}
		}
		if err != nil && !isReply(err) {
			return failed
		}
		// A server that follows RFC 2920 refuses DATA after a refused
		// command. One that accepts it waits for a message: the session
		// is then dropped, never given an empty message that might go
		// somewhere.
		c.dataOpen = failed != nil && s.name == stepData && err == nil
	}
	return failed
}

// envelopeStepByStep sends r's envelope to a server without PIPELINING,
// each command waiting for its reply.
func (c *conn) envelopeStepByStep(r *rendered) error {
	cmds := c.appendEnvelope(c.out[:0], r)
	c.out = cmds
	t := c.session.Text
	for _, s := range envelopeSteps {
		end := bytes.IndexByte(cmds, '\n') + 1
		if err := write(t, cmds[:end]); err != nil {
			return &stepError{s.name, err}
		}
		cmds = cmds[end:]
		if _, _, err := t.ReadResponse(s.expect); err != nil {
			return &stepError{s.name, err}
		}
	}
	return nil
}

// writeData writes r's message, dot-stuffed, and its final dot, followed
// in the same write by next, the envelope of the next message when there
// is one (RFC 2920 lets the message start a group of commands).
func (c *conn) writeData(r *rendered, next []byte) error {
	out := c.out[:0]
	out = appendDotStuffed(out, []byte(r.sig))
	out = appendDotStuffed(out, r.data.Bytes())
	out = append(out, ".\r\n"...)
	out = append(out, next...)
	c.out = out
	if err := write(c.session.Text, out); err != nil {
		return &stepError{stepEnd, err}
	}
	return nil
}

// readFinal reads the reply to a message's final dot.
func (c *conn) readFinal() (string, error) {
	code, msg, err := c.session.Text.ReadResponse(2)
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
