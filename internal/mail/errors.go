package mail

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	gomail "github.com/wneessen/go-mail"
)

var (
	// ErrInvalidAddress is wrapped by the permanent SendError returned for a
	// From or To address that cannot be parsed.
	ErrInvalidAddress = errors.New("invalid address")

	// ErrClosed is returned by Send after Close.
	ErrClosed = errors.New("mail sender closed")
)

// SendError is a failed delivery attempt. Temporary errors (SMTP 4xx,
// network and timeout errors) are worth retrying; permanent ones (SMTP 5xx,
// invalid addresses, unusable messages) are not.
type SendError struct {
	Temporary bool
	Code      int    // SMTP reply code, 0 when the server gave none
	Enhanced  string // RFC 3463 enhanced status code such as "5.1.1", or ""
	Text      string // server reply text without the codes, or what failed
	Err       error
}

// Error returns the server's reply, "550 5.1.1 mailbox unavailable", or
// Text when there was no reply.
func (e *SendError) Error() string {
	if e.Code == 0 {
		if e.Text == "" && e.Err != nil {
			return e.Err.Error()
		}
		return e.Text
	}
	var b strings.Builder
	b.WriteString(strconv.Itoa(e.Code))
	if e.Enhanced != "" {
		b.WriteByte(' ')
		b.WriteString(e.Enhanced)
	}
	if e.Text != "" {
		b.WriteByte(' ')
		b.WriteString(e.Text)
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *SendError) Unwrap() error { return e.Err }

// IsPermanent reports whether err is a delivery failure that retrying will
// not fix: a permanent SendError or an invalid address. Any other error,
// including context cancellation, is not permanent.
func IsPermanent(err error) bool {
	var se *SendError
	if errors.As(err, &se) {
		return !se.Temporary
	}
	return errors.Is(err, ErrInvalidAddress)
}

func temporary(err error, format string, args ...any) *SendError {
	err = fmt.Errorf(format+": %w", append(args, err)...)
	return &SendError{Temporary: true, Text: err.Error(), Err: err}
}

func permanent(err error) *SendError {
	return &SendError{Text: err.Error(), Err: err}
}

// classify turns go-mail's error for one message into a SendError.
//
// go-mail reports the reply code and enhanced code but not the server's
// text, and its SendError has no Unwrap; the text is recovered from its
// documented message layout, "REASON: ERR[, affected recipient(s): RCPT]
// [, affected message ID: ID]", of which we know every part but ERR.
func classify(err error, rcpt, messageID string) *SendError {
	var ge *gomail.SendError
	if !errors.As(err, &ge) {
		return temporary(err, "send")
	}
	code := ge.ErrorCode()
	text := ge.Error()
	text = strings.TrimSuffix(text, ", affected message ID: "+messageID)
	text = strings.TrimSuffix(text, ", affected recipient(s): <"+rcpt+">")
	text = strings.TrimSuffix(text, ", affected recipient(s): "+rcpt)
	if code != 0 {
		text = serverText(strings.TrimPrefix(text, ge.Reason.String()+": "), code, ge.EnhancedStatusCode())
	}
	se := &SendError{Code: code, Enhanced: ge.EnhancedStatusCode(), Text: text, Err: err}
	switch {
	case code >= 400 && code < 500:
		se.Temporary = true
	case code >= 500:
		se.Temporary = false
	default:
		// No reply code: go-mail failed before talking to the server about
		// this message (a bad sender or recipient) or the connection broke.
		switch ge.Reason {
		case gomail.ErrGetSender, gomail.ErrGetRcpts, gomail.ErrNoUnencoded:
			se.Temporary = false
		default:
			se.Temporary = true
		}
	}
	return se
}

// serverText extracts the reply text from "CODE TEXT" or, as net/textproto
// quotes it since Go 1.26, `CODE "TEXT"`, and drops a leading enhanced code.
func serverText(s string, code int, enhanced string) string {
	rest, ok := strings.CutPrefix(s, strconv.Itoa(code)+" ")
	if !ok {
		return s
	}
	if q, err := strconv.QuotedPrefix(rest); err == nil {
		rest, _ = strconv.Unquote(q)
	}
	if enhanced != "" {
		rest = strings.TrimPrefix(rest, enhanced+" ")
	}
	return rest
}
