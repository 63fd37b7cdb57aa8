package mail

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"mime"
	netmail "net/mail"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// rendered is a message as it goes on the wire, before dot-stuffing.
type rendered struct {
	from, rcpt string // envelope addresses, "<a@b.c>"
	// sig is the DKIM-Signature field, CRLF included, or "": it goes
	// before data.
	sig string
	// data is the header and the body, every line ending in CRLF.
	data *bytes.Buffer
	// eightBit says a part is sent as 8bit, which only a server that
	// offers 8BITMIME takes.
	eightBit bool
}

// bytes returns the whole message, signature included, as a file holds it.
func (r *rendered) bytes() []byte {
	if r.sig == "" {
		return r.data.Bytes()
	}
	return slices.Concat([]byte(r.sig), r.data.Bytes())
}

// render writes m into buf (which it resets) as RFC 5322 and MIME want it:
// a text/html part, or a multipart/alternative of text/plain and text/html
// when m has Text. Each part is 7bit when it can be, else 8bit if
// eightBit allows it and it can be, else quoted-printable. The message is
// signed with dk unless it is nil. Its errors are permanent: the same
// message will never render.
func (m *Message) render(buf *bytes.Buffer, now time.Time, dk *DKIM, eightBit bool, senders *senderCache) (*rendered, error) {
	from, err := senders.get(m.From)
	if err != nil {
		return nil, permanent(fmt.Errorf("%w: from %q: %v", ErrInvalidAddress, m.From, err))
	}
	to, err := parseAddress(m.To)
	if err != nil {
		return nil, permanent(fmt.Errorf("%w: to %q: %v", ErrInvalidAddress, m.To, err))
	}
	msgID, err := m.messageID(from.address)
	if err != nil {
		return nil, permanent(err)
	}
	if m.HTML == "" {
		return nil, permanent(fmt.Errorf("message %s has no HTML body", msgID))
	}
	r := &rendered{
		from: from.envelope,
		rcpt: envelopeAddress(to.Address),
		data: buf,
	}
	if strings.ContainsAny(r.from, "\r\n") || strings.ContainsAny(r.rcpt, "\r\n") {
		return nil, permanent(fmt.Errorf("%w: %s or %s holds a line break", ErrInvalidAddress, r.from, r.rcpt))
	}

	buf.Reset()
	field(buf, "Message-ID", msgID)
	buf.WriteString("Date: ")
	buf.Write(now.AppendFormat(buf.AvailableBuffer(), time.RFC1123Z))
	buf.WriteString("\r\n")
	field(buf, "From", from.field)
	field(buf, "To", to.String())
	// The Q encoding turns control characters into encoded words, so no
	// value can smuggle in another field.
	field(buf, "Subject", mime.QEncoding.Encode("UTF-8", m.Subject))
	buf.WriteString("MIME-Version: 1.0\r\n")
	if err := m.extraHeaders(buf, msgID); err != nil {
		return nil, err
	}

	if m.Text == "" {
		r.eightBit = writePart(buf, "text/html", m.HTML, eightBit)
	} else {
		boundary := rand.Text()
		for strings.Contains(m.Text, boundary) || strings.Contains(m.HTML, boundary) {
			boundary = rand.Text()
		}
		buf.WriteString("Content-Type: multipart/alternative; boundary=\"" + boundary + "\"\r\n\r\n")
		buf.WriteString("--" + boundary + "\r\n")
		text := writePart(buf, "text/plain", m.Text, eightBit)
		buf.WriteString("\r\n--" + boundary + "\r\n")
		html := writePart(buf, "text/html", m.HTML, eightBit)
		buf.WriteString("\r\n--" + boundary + "--")
		r.eightBit = text || html
	}
	if !bytes.HasSuffix(buf.Bytes(), []byte("\r\n")) {
		buf.WriteString("\r\n")
	}

	if dk != nil {
		_, domain, _ := strings.Cut(from.address, "@")
		if r.sig, err = dk.sign(buf.Bytes(), domain, signedHeaders(m)); err != nil {
			return nil, permanent(fmt.Errorf("message %s: %w", msgID, err))
		}
	}
	return r, nil
}

// extraHeaders writes m.Headers in the order of their names, so that a
// message comes out the same every time.
func (m *Message) extraHeaders(buf *bytes.Buffer, msgID string) error {
	keys := make([]string, 0, len(m.Headers))
	for k := range m.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		v := m.Headers[k]
		key := textproto.CanonicalMIMEHeaderKey(k)
		if !validHeaderKey(k) || reservedHeaders[key] {
			return permanent(fmt.Errorf("message %s: header %q cannot be set", msgID, k))
		}
		if seen[key] {
			return permanent(fmt.Errorf("message %s: header %s given twice", msgID, key))
		}
		seen[key] = true
		if key == "List-Unsubscribe" {
			// Already formatted as RFC 2369 wants ("<https://...>, <mailto:...>");
			// word-encoding would break it. Line breaks would inject headers.
			if strings.ContainsAny(v, "\r\n") {
				return permanent(fmt.Errorf("message %s: header %s contains a line break", msgID, key))
			}
			field(buf, key, v)
			continue
		}
		field(buf, key, mime.QEncoding.Encode("UTF-8", v))
	}
	return nil
}

// sender is a From address, parsed and formatted.
type sender struct {
	address  string // "a@b.c"
	field    string // the From field's value
	envelope string // MAIL FROM's, "<a@b.c>"
}

// senderCache keeps the few From addresses a sender uses parsed and
// formatted: every recipient of a campaign shares one. A nil
// *senderCache parses every time.
type senderCache struct {
	m sync.Map // string -> *sender
	n atomic.Int32
}

// maxSenders bounds a senderCache; From addresses beyond are parsed each
// time.
const maxSenders = 64

func (c *senderCache) get(from string) (*sender, error) {
	if c != nil {
		if s, ok := c.m.Load(from); ok {
			return s.(*sender), nil
		}
	}
	a, err := parseAddress(from)
	if err != nil {
		return nil, err
	}
	s := &sender{address: a.Address, field: a.String(), envelope: envelopeAddress(a.Address)}
	if c != nil && c.n.Add(1) <= maxSenders {
		c.m.Store(from, s)
	}
	return s, nil
}

// parseAddress is net/mail's ParseAddress, with a shortcut for the usual
// recipient: a bare address of plain characters, which it returns as is.
func parseAddress(s string) (*netmail.Address, error) {
	local, domain, ok := strings.Cut(s, "@")
	if ok && dotAtom(local) && dotAtom(domain) {
		return &netmail.Address{Address: s}, nil
	}
	return netmail.ParseAddress(s)
}

// dotAtom reports whether s is dot-separated words of letters, digits,
// '_', '+' and '-': a subset of RFC 5322's dot-atom that needs no quoting.
func dotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '+' || c == '-') {
			return false
		}
	}
	return true
}

// envelopeAddress is addr as MAIL FROM and RCPT TO want it, "<a@b.c>",
// with the local part quoted when it must be.
func envelopeAddress(addr string) string {
	return (&netmail.Address{Address: addr}).String()
}

// maxLine is the longest line SMTP carries (RFC 5321), CRLF excluded.
const maxLine = 998

// field writes "name: value" folded before spaces so that lines stay
// within 78 characters where the value allows it. Folding only inserts
// CRLF before an existing space, so unfolding gives value back.
func field(buf *bytes.Buffer, name, value string) {
	buf.WriteString(name)
	buf.WriteString(": ")
	line, text := len(name)+2, true
	for value != "" {
		i := strings.IndexByte(value[1:], ' ') + 1
		if i == 0 {
			i = len(value)
		}
		word := value[:i]
		if word[0] == ' ' && text && line+len(word) > 78 {
			buf.WriteString("\r\n")
			line, text = 0, false
		}
		buf.WriteString(word)
		line += len(word)
		text = text || strings.TrimLeft(word, " ") != ""
		value = value[i:]
	}
	buf.WriteString("\r\n")
}

// writePart writes the Content-Type and Content-Transfer-Encoding fields,
// a blank line and body, encoded. It reports whether it used 8bit.
func writePart(buf *bytes.Buffer, mediaType, body string, eightBit bool) (used8bit bool) {
	buf.WriteString("Content-Type: " + mediaType + "; charset=UTF-8\r\n")
	fits := unencodable(body)
	ascii := fits && isASCII(body)
	switch {
	case fits && ascii:
		buf.WriteString("Content-Transfer-Encoding: 7bit\r\n\r\n")
		writeLines(buf, body)
	case fits && eightBit && utf8.ValidString(body):
		buf.WriteString("Content-Transfer-Encoding: 8bit\r\n\r\n")
		writeLines(buf, body)
		used8bit = true
	default:
		buf.WriteString("Content-Transfer-Encoding: quoted-printable\r\n\r\n")
		buf.Write(appendQP(buf.AvailableBuffer(), body))
	}
	return used8bit
}

// unencodable reports whether body can go as it is, in 7bit or 8bit: no
// NUL and no line longer than maxLine. (A lone CR, which writeLines
// turns into a line break, is counted as part of its line.)
func unencodable(body string) bool {
	if strings.IndexByte(body, 0) >= 0 {
		return false
	}
	for body != "" {
		i := strings.IndexByte(body, '\n')
		if i < 0 {
			return len(body) <= maxLine
		}
		if i > maxLine {
			return false
		}
		body = body[i+1:]
	}
	return true
}

// isASCII reports whether s is all 7-bit, eight bytes at a time.
func isASCII(s string) bool {
	for len(s) >= 8 {
		if binary.LittleEndian.Uint64([]byte(s[:8]))&0x8080808080808080 != 0 {
			return false
		}
		s = s[8:]
	}
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// writeLines writes body with every line break (CRLF, LF or a lone CR)
// as CRLF.
func writeLines(buf *bytes.Buffer, body string) {
	buf.Grow(len(body) + len(body)/32)
	if strings.IndexByte(body, '\r') < 0 {
		for body != "" {
			i := strings.IndexByte(body, '\n')
			if i < 0 {
				buf.WriteString(body)
				return
			}
			buf.WriteString(body[:i])
			buf.WriteString("\r\n")
			body = body[i+1:]
		}
		return
	}
	for body != "" {
		i := strings.IndexAny(body, "\r\n")
		if i < 0 {
			buf.WriteString(body)
			return
		}
		buf.WriteString(body[:i])
		buf.WriteString("\r\n")
		if body[i] == '\r' && i+1 < len(body) && body[i+1] == '\n' {
			i++
		}
		body = body[i+1:]
	}
}

// qpLiteral marks the bytes quoted-printable writes as themselves; space
// and tab too, except at the end of a line.
var qpLiteral = func() (t [256]bool) {
	for c := '!'; c <= '~'; c++ {
		t[c] = c != '='
	}
	t[' '], t['\t'] = true, true
	return t
}()

const upperHex = "0123456789ABCDEF"

// appendQP appends s encoded as quoted-printable (RFC 2045) to dst: every
// line break (CRLF, LF or a lone CR) becomes CRLF, and no encoded line is
// longer than 76 characters. Runs of bytes that stand for themselves are
// copied whole.
func appendQP(dst []byte, s string) []byte {
	dst = slices.Grow(dst, len(s)+len(s)/8)
	const room = 75 // characters on a line before its soft break "="
	n := 0          // characters on the current encoded line
	for i := 0; i < len(s); {
		c := s[i]
		if c == '\r' || c == '\n' {
			if c == '\r' && i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			dst = append(dst, '\r', '\n')
			n = 0
			i++
			continue
		}
		if n >= room {
			dst = append(dst, '=', '\r', '\n')
			n = 0
		}
		j := i
		for j < len(s) && j-i < room-n && qpLiteral[s[j]] {
			j++
		}
		if j > i && (j == len(s) || s[j] == '\r' || s[j] == '\n') && (s[j-1] == ' ' || s[j-1] == '\t') {
			j-- // trailing white space would be lost: encode it
		}
		if j > i {
			dst = append(dst, s[i:j]...)
			n += j - i
			i = j
			continue
		}
		if n+3 > room {
			dst = append(dst, '=', '\r', '\n')
			n = 0
		}
		dst = append(dst, '=', upperHex[c>>4], upperHex[c&15])
		n += 3
		i++
	}
	return dst
}

// appendDotStuffed appends msg to dst as DATA carries it (RFC 5321
// 4.5.2): a '.' doubled where it starts a line. msg's lines end in CRLF.
func appendDotStuffed(dst, msg []byte) []byte {
	if len(msg) > 0 && msg[0] == '.' {
		dst = append(dst, '.')
	}
	for {
		i := bytes.Index(msg, []byte("\n."))
		if i < 0 {
			return append(dst, msg...)
		}
		dst = append(dst, msg[:i+2]...)
		dst = append(dst, '.')
		msg = msg[i+2:]
	}
}
