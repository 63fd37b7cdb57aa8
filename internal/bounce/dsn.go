package bounce

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"time"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// A message read from a file is one of these.
type parsed struct {
	// notices are the bounces of a delivery status notification, one per
	// recipient that failed or was delayed.
	notices []Notice
	// ignored counts the recipients of a DSN that report no bounce
	// (delivered, relayed, expanded).
	ignored int
	// token is the token of a mailto unsubscribe request ("" otherwise).
	token string
}

// maxPartBytes bounds what is read of a report's parts.
const maxPartBytes = 1 << 20

// parseMessage reads one message: an RFC 3464 delivery status
// notification (multipart/report; report-type=delivery-status), or a
// mailto unsubscribe request (Subject: unsubscribe-TOKEN). fallback dates
// notices that carry no date. Its errors say why a message is neither.
func parseMessage(raw []byte, fallback time.Time) (parsed, error) {
	e, err := gomessage.Read(bytes.NewReader(raw))
	if err != nil && !gomessage.IsUnknownCharset(err) && !gomessage.IsUnknownEncoding(err) {
		return parsed{}, fmt.Errorf("not a mail message: %v", err)
	}
	mt, params, _ := e.Header.ContentType()
	if mt != "multipart/report" {
		subject, _ := e.Header.Text("Subject")
		subject = strings.TrimSpace(subject)
		if len(subject) > len(subjectPrefix) && strings.EqualFold(subject[:len(subjectPrefix)], subjectPrefix) {
			return parsed{token: strings.TrimSpace(subject[len(subjectPrefix):])}, nil
		}
		if mt == "" {
			mt = "text/plain"
		}
		return parsed{}, fmt.Errorf("neither a delivery status notification nor an unsubscribe request (Content-Type %s, Subject %q)",
			mt, clip(subject, 60))
	}
	if rt := strings.ToLower(params["report-type"]); rt != "delivery-status" && rt != "global-delivery-status" {
		return parsed{}, fmt.Errorf("a report of type %q, not delivery-status", params["report-type"])
	}
	var (
		status   []textproto.Header
		original string
	)
	err = e.Walk(func(_ []int, part *gomessage.Entity, err error) error {
		if err != nil && !gomessage.IsUnknownCharset(err) && !gomessage.IsUnknownEncoding(err) {
			return err
		}
		pt, _, _ := part.Header.ContentType()
		switch pt {
		case "message/delivery-status", "message/global-delivery-status":
			body, err := io.ReadAll(io.LimitReader(part.Body, maxPartBytes))
			if err != nil {
				return err
			}
			if status, err = statusBlocks(body); err != nil {
				return fmt.Errorf("the delivery-status part: %w", err)
			}
		case "message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers":
			h, err := textproto.ReadHeader(bufio.NewReader(io.LimitReader(part.Body, maxPartBytes)))
			if err == nil || h.Len() > 0 {
				original = normalizeMessageID(h.Get("Message-Id"))
			}
		}
		return nil
	})
	if err != nil {
		return parsed{}, err
	}
	if len(status) == 0 {
		return parsed{}, errors.New("a delivery status notification without a message/delivery-status part")
	}
	// The key of a notice: the returned email's Message-ID, else the
	// report's own, else its bytes.
	keyBase := original
	if keyBase == "" {
		if id := normalizeMessageID(e.Header.Get("Message-Id")); id != "" {
			keyBase = "report " + id
		} else {
			sum := sha256.Sum256(raw)
			keyBase = "report bytes " + hex.EncodeToString(sum[:])
		}
	}
	if d, err := mail.ParseDate(e.Header.Get("Date")); err == nil {
		fallback = d.UTC()
	}
	var p parsed
	perMessage := status[0]
	if at, err := mail.ParseDate(perMessage.Get("Arrival-Date")); err == nil {
		fallback = at.UTC()
	}
	for i, b := range status {
		rcpt := address(b.Get("Final-Recipient"))
		if rcpt == "" {
			rcpt = address(b.Get("Original-Recipient"))
		}
		if rcpt == "" {
			if i == 0 {
				continue // the per-message fields
			}
			return parsed{}, fmt.Errorf("recipient fields %d have no Final-Recipient", i)
		}
		if a, err := mail.ParseAddress(rcpt); err != nil || a.Address != rcpt {
			return parsed{}, fmt.Errorf("Final-Recipient %q is not an email address", rcpt)
		}
		action := strings.ToLower(strings.TrimSpace(b.Get("Action")))
		code, _, _ := strings.Cut(strings.TrimSpace(b.Get("Status")), " ")
		var kind string
		switch {
		case strings.HasPrefix(code, "5."):
			kind = Hard
		case strings.HasPrefix(code, "4."):
			kind = Soft
		case strings.HasPrefix(code, "2.") || action == "delivered" || action == "relayed" || action == "expanded":
			p.ignored++
			continue
		case code == "" && action == "failed":
			kind = Hard
		case code == "" && action == "delayed":
			kind = Soft
		default:
			return parsed{}, fmt.Errorf("recipient %s has Status %q and Action %q", rcpt, b.Get("Status"), b.Get("Action"))
		}
		at := fallback
		if d, err := mail.ParseDate(b.Get("Last-Attempt-Date")); err == nil {
			at = d.UTC()
		}
		reason := code
		if diag := strings.Join(strings.Fields(b.Get("Diagnostic-Code")), " "); diag != "" {
			reason += " " + diag
		}
		email := strings.ToLower(rcpt)
		p.notices = append(p.notices, Notice{Key: hashKey(keyBase, email, kind), Kind: kind, Email: email, MessageID: original,
			Reason: clip(reason, maxReason), OccurredAt: at})
	}
	if len(p.notices) == 0 && p.ignored == 0 {
		return parsed{}, errors.New("a delivery status notification without recipients")
	}
	return p, nil
}

// statusBlocks splits a message/delivery-status body into its groups of
// fields: the per-message fields, then one group per recipient.
func statusBlocks(body []byte) ([]textproto.Header, error) {
	// Every group ends with a blank line, the last one included.
	br := bufio.NewReader(io.MultiReader(bytes.NewReader(body), strings.NewReader("\r\n\r\n")))
	var out []textproto.Header
	for {
		// Blank lines between groups, and after the last.
		for {
			c, err := br.ReadByte()
			if err != nil {
				return out, nil
			}
			if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
				br.UnreadByte()
				break
			}
		}
		h, err := textproto.ReadHeader(br)
		if err != nil {
			return nil, err
		}
		if h.Len() > 0 {
			out = append(out, h)
		}
	}
}

// address is the address of a recipient field: "rfc822; ann@example.com".
func address(field string) string {
	typ, addr, ok := strings.Cut(field, ";")
	if !ok {
		addr = typ
	} else if t := strings.ToLower(strings.TrimSpace(typ)); t != "rfc822" && t != "utf-8" {
		return ""
	}
	return strings.Trim(strings.TrimSpace(addr), "<>")
}

// clip shortens s to at most n bytes, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
