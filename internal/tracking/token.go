// Package tracking measures what recipients do with an email: an open
// pixel in its HTML part and click redirects in place of its links, each
// carrying a signed token, and the HTTP handlers that answer them and
// record the hits.
package tracking

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"nurture/internal/unsubscribe"
)

// Paths of the HTTP role's tracking handlers; the token follows.
const (
	OpenPath  = "/t/o/"
	ClickPath = "/t/c/"
)

// DefaultTTL is how long a token is recorded after its email was made:
// a year. Older hits are still answered (the pixel, the redirect) but not
// counted.
const DefaultTTL = 365 * 24 * time.Hour

// Config configures Links.
type Config struct {
	// BaseURL is the public address of the HTTP role, such as
	// https://mail.example.com (PUBLIC_URL). Required.
	BaseURL string
	// Secret signs the tokens; at least 16 characters (SECRET). Required.
	Secret string
	// TTL is how long after it was issued a token's hits are recorded.
	// Default DefaultTTL.
	TTL time.Duration
	// Now is the clock tokens are issued and checked by. Default time.Now.
	Now func() time.Time
}

// Links makes and checks tracking links. It is safe for concurrent use.
//
// A token is the kind of link (open or click), the delivery id, the time
// it was issued, a 128-bit HMAC-SHA256 tag and, for a click, the target
// URL, in unpadded URL-safe base64. The key is derived from the secret
// for tracking alone, so no unsubscribe signature is ever a valid tracking
// token, nor the reverse; the kind is signed, so an open token is no
// click token.
type Links struct {
	base string
	key  []byte
	ttl  time.Duration
	now  func() time.Time
}

// New returns Links for cfg.
func New(cfg Config) (*Links, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tracking: public URL %q: want an absolute http(s) URL such as https://mail.example.com", cfg.BaseURL)
	}
	if len(cfg.Secret) < 16 {
		return nil, errors.New("tracking: secret: want at least 16 characters")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := hmac.New(sha256.New, []byte(cfg.Secret))
	m.Write([]byte("nurture tracking token key v1"))
	return &Links{base: strings.TrimSuffix(cfg.BaseURL, "/"), key: m.Sum(nil), ttl: cfg.TTL, now: cfg.Now}, nil
}

// Kind is what a token is for.
type Kind byte

// Kinds of token.
const (
	Open  Kind = 'o'
	Click Kind = 'c'
)

func (k Kind) String() string {
	if k == Click {
		return "click"
	}
	return "open"
}

const (
	headerLen = 1 + 16 + 4 // kind, delivery id, issued (Unix seconds)
	tagLen    = 16
)

func (l *Links) tag(header []byte, target string) []byte {
	m := hmac.New(sha256.New, l.key)
	m.Write(header)
	m.Write([]byte(target))
	return m.Sum(nil)[:tagLen]
}

func (l *Links) token(kind Kind, delivery uuid.UUID, target string) string {
	b := make([]byte, headerLen, headerLen+tagLen+len(target))
	b[0] = byte(kind)
	copy(b[1:17], delivery[:])
	binary.BigEndian.PutUint32(b[17:21], uint32(l.now().Unix()))
	b = append(b, l.tag(b, target)...)
	b = append(b, target...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// OpenURL is the address of the open pixel of delivery.
func (l *Links) OpenURL(delivery uuid.UUID) string {
	return l.base + OpenPath + l.token(Open, delivery, "")
}

// ClickURL is the address that records a click of delivery's link to
// target and redirects to it.
func (l *Links) ClickURL(delivery uuid.UUID, target string) string {
	return l.base + ClickPath + l.token(Click, delivery, target)
}

// Errors of Check.
var (
	ErrInvalid = errors.New("tracking token is not valid")
	ErrExpired = errors.New("tracking token has expired")
)

// Token is what a checked token says.
type Token struct {
	Kind     Kind
	Delivery uuid.UUID
	Issued   time.Time
	// Target is where a click token leads; empty for an open.
	Target string
}

// Check returns what token, of the given kind, was signed for. A token
// that is not one of ours, was altered, or is of another kind is
// ErrInvalid. A genuine token older than the TTL is returned with
// ErrExpired, so that its click can still be redirected.
func (l *Links) Check(kind Kind, token string) (Token, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < headerLen+tagLen || Kind(b[0]) != kind {
		return Token{}, ErrInvalid
	}
	header, tag, target := b[:headerLen], b[headerLen:headerLen+tagLen], b[headerLen+tagLen:]
	if !hmac.Equal(tag, l.tag(header, string(target))) {
		return Token{}, ErrInvalid
	}
	t := Token{Kind: kind, Issued: time.Unix(int64(binary.BigEndian.Uint32(header[17:21])), 0).UTC(), Target: string(target)}
	copy(t.Delivery[:], header[1:17])
	switch {
	case kind == Open && len(target) != 0:
		return Token{}, ErrInvalid
	case kind == Click && !Trackable(t.Target):
		return Token{}, ErrInvalid // never signed by ClickURL's callers; refuse all the same
	}
	if l.now().Sub(t.Issued) > l.ttl {
		return t, ErrExpired
	}
	return t, nil
}

// Trackable reports whether a link target is rewritten: an absolute
// http or https URL with a host, free of control characters and spaces.
func Trackable(target string) bool {
	if target == "" || strings.ContainsFunc(target, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return false
	}
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return false
	}
	s := strings.ToLower(u.Scheme)
	return s == "http" || s == "https"
}

// isOurs reports whether target already points at the tracking handlers
// or another page of the HTTP role that must not be wrapped.
func (l *Links) isOurs(target string) bool {
	return strings.HasPrefix(target, l.base+"/t/") || strings.HasPrefix(target, l.base+unsubscribe.Path)
}
