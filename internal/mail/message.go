package mail

import (
	"fmt"
	netmail "net/mail"
	"net/textproto"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Message is one email to send.
type Message struct {
	// ID is the delivery id; the file outbox names its file after it.
	ID string
	// Campaign and CustomerID say whose email this is; the file outbox
	// files it as CAMPAIGN/CUSTOMER_ID-ID.eml so a person can find it.
	// Either may be empty.
	Campaign, CustomerID string
	// MessageID is the full Message-ID header value, angle brackets
	// included, normally MessageID(ID, domain). When empty, it is derived
	// from ID and the domain of From.
	MessageID string
	From      string // "Shop <hello@example.com>"
	To        string // "Ann <ann@example.com>" or "ann@example.com"
	Subject   string
	HTML      string
	Text      string // optional; without it the message is HTML only
	// Headers are extra header fields such as List-Unsubscribe,
	// List-Unsubscribe-Post, X-Nurture-Campaign and X-Nurture-Delivery.
	// They cannot replace the fields the message is built from.
	Headers map[string]string
}

// MessageID returns the Message-ID for a delivery: "<deliveryID@domain>".
// It is stable, so a resent delivery carries the same id.
func MessageID(deliveryID, domain string) string {
	return "<" + deliveryID + "@" + domain + ">"
}

// reservedHeaders are built from Message fields or by go-mail.
var reservedHeaders = map[string]bool{
	"Message-Id": true, "Date": true, "From": true, "To": true, "Cc": true, "Bcc": true,
	"Subject": true, "Mime-Version": true, "Content-Type": true, "Content-Transfer-Encoding": true,
	"Dkim-Signature": true,
}

// build turns m into a go-mail message, signed with dk unless it is nil.
// Its errors are permanent: the same message will never build.
func (m *Message) build(now time.Time, dk *DKIM) (msg *gomail.Msg, rcpt string, err error) {
	from, err := netmail.ParseAddress(m.From)
	if err != nil {
		return nil, "", permanent(fmt.Errorf("%w: from %q: %v", ErrInvalidAddress, m.From, err))
	}
	to, err := netmail.ParseAddress(m.To)
	if err != nil {
		return nil, "", permanent(fmt.Errorf("%w: to %q: %v", ErrInvalidAddress, m.To, err))
	}
	msgID, err := m.messageID(from.Address)
	if err != nil {
		return nil, "", permanent(err)
	}
	if m.HTML == "" {
		return nil, "", permanent(fmt.Errorf("message %s has no HTML body", msgID))
	}

	msg = gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(from)
	msg.ToMailAddress(to)
	msg.SetMessageIDWithValue(strings.TrimSuffix(strings.TrimPrefix(msgID, "<"), ">"))
	msg.SetDateWithValue(now)
	msg.Subject(m.Subject)
	for k, v := range m.Headers {
		key := textproto.CanonicalMIMEHeaderKey(k)
		if !validHeaderKey(k) || reservedHeaders[key] {
			return nil, "", permanent(fmt.Errorf("message %s: header %q cannot be set", msgID, k))
		}
		if key == "List-Unsubscribe" {
			// Already formatted as RFC 2369 wants ("<https://...>, <mailto:...>");
			// word-encoding would break it. Line breaks would inject headers.
			// (Only this one: go-mail writes preformatted fields in no fixed
			// order, and a message should come out the same every time.)
			if strings.ContainsAny(v, "\r\n") {
				return nil, "", permanent(fmt.Errorf("message %s: header %s contains a line break", msgID, key))
			}
			msg.SetGenHeaderPreformatted(gomail.Header(key), v)
			continue
		}
		// go-mail word-encodes values with control characters, so a value
		// cannot smuggle in another header.
		msg.SetGenHeader(gomail.Header(key), v)
	}
	if m.Text != "" {
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	} else {
		msg.SetBodyString(gomail.TypeTextHTML, m.HTML)
	}
	if dk != nil {
		_, domain, _ := strings.Cut(from.Address, "@")
		if err := dk.sign(msg, domain, signedHeaders(m)); err != nil {
			return nil, "", permanent(fmt.Errorf("message %s: %w", msgID, err))
		}
	}
	return msg, to.Address, nil
}

func (m *Message) messageID(fromAddr string) (string, error) {
	id := m.MessageID
	if id == "" {
		if m.ID == "" {
			return "", fmt.Errorf("message to %s has neither ID nor MessageID", m.To)
		}
		_, domain, _ := strings.Cut(fromAddr, "@")
		id = MessageID(m.ID, domain)
	}
	if len(id) < 5 || id[0] != '<' || id[len(id)-1] != '>' || !strings.Contains(id, "@") ||
		strings.ContainsAny(id[1:len(id)-1], "<> \t\r\n") {
		return "", fmt.Errorf("invalid Message-ID %q, want <id@domain>", id)
	}
	return id, nil
}

func validHeaderKey(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range []byte(k) {
		if c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}
