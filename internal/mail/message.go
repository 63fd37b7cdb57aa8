package mail

import (
	"fmt"
	"strings"
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

// reservedHeaders are built from Message fields.
var reservedHeaders = map[string]bool{
	"Message-Id": true, "Date": true, "From": true, "To": true, "Cc": true, "Bcc": true,
	"Subject": true, "Mime-Version": true, "Content-Type": true, "Content-Transfer-Encoding": true,
	"Dkim-Signature": true,
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
