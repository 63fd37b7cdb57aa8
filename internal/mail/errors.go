package mail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
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

// Kinds of send failure that ErrorKind reports, for logs and metrics.
const (
	KindRefused   = "connection_refused" // nothing listens at the server's address
	KindTimeout   = "timeout"            // the server did not answer in time
	KindDropped   = "connection_dropped" // the connection broke mid-conversation
	KindTLS       = "tls"                // the TLS handshake or certificate failed
	KindAuth      = "auth"               // the server refused our credentials
	KindTemporary = "temporary_reply"    // a 4xx reply
	KindPermanent = "permanent_reply"    // a 5xx reply
	KindInvalid   = "invalid_message"    // an address or message we could not send
	KindOther     = "other"
)

// ErrorKind sorts a Send error into one of the Kind constants. Transport
// trouble (refused, timeout, dropped, tls, auth) concerns the server, not
// the message, and is what operators are warned about.
func ErrorKind(err error) string {
	var se *SendError
	if errors.As(err, &se) && se.Code != 0 {
		if se.Code >= 500 {
			return KindPermanent
		}
		return KindTemporary
	}
	if errors.Is(err, ErrInvalidAddress) || (se != nil && !se.Temporary) {
		return KindInvalid
	}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindRefused
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return KindDropped
	}
	// go-mail's errors do not unwrap to the network error: fall back to
	// the text it keeps.
	text := strings.ToLower(err.Error())
	switch {
	case strings.Contains(text, "connection refused"):
		return KindRefused
	case strings.Contains(text, "timeout"), strings.Contains(text, "deadline exceeded"):
		return KindTimeout
	case strings.Contains(text, "tls"), strings.Contains(text, "x509"), strings.Contains(text, "certificate"):
		return KindTLS
	case strings.Contains(text, "auth"):
		return KindAuth
	case strings.Contains(text, "eof"), strings.Contains(text, "connection reset"),
		strings.Contains(text, "broken pipe"), strings.Contains(text, "closed"):
		return KindDropped
	}
	return KindOther
}

// IsTransport reports whether kind is trouble with the server rather than
// with one message.
func IsTransport(kind string) bool {
	switch kind {
	case KindRefused, KindTimeout, KindDropped, KindTLS, KindAuth, KindTemporary:
		return true
	}
	return false
}
