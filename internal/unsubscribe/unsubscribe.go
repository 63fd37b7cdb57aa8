// Package unsubscribe makes and serves one-click unsubscribe links
// (RFC 8058): every email carries a List-Unsubscribe link signed for its
// customer, and the HTTP role withdraws the customer's consent when the link
// is used, so no later delivery is sent (the worker re-checks consent).
package unsubscribe

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Path is where the HTTP role serves unsubscribe links.
const Path = "/unsubscribe"

// DefaultTTL is how long an unsubscribe link works after its email was
// made (UNSUBSCRIBE_TTL).
const DefaultTTL = 60 * 24 * time.Hour

// Config configures Links.
type Config struct {
	// BaseURL is the public address of the HTTP role, such as
	// https://mail.example.com (PUBLIC_URL, or UNSUBSCRIBE_URL). Required.
	BaseURL string
	// Secret signs the links; at least 16 characters (SECRET, or
	// UNSUBSCRIBE_SECRET). Required.
	Secret string
	// TTL is how long a link works after it was issued. Default DefaultTTL.
	TTL time.Duration
	// Now is the clock links are issued and checked by. Default time.Now.
	Now func() time.Time
	// Mailto, when set, is the address of a mailbox that `nurture bounces
	// import` reads (UNSUBSCRIBE_MAILTO): List-Unsubscribe then also offers
	// mailto:Mailto?subject=unsubscribe-TOKEN. Default empty: no mailto.
	Mailto string
}

// Links signs and checks unsubscribe links. It is safe for concurrent use.
//
// A link names the customer, the campaign whose email carried it and when
// it was issued, signed with HMAC-SHA256: it cannot be made for another
// customer or campaign, and stops working TTL after it was issued. Links
// from before campaigns and times were signed (a token over the customer
// alone) keep working, without a campaign: they are in emails people
// still have.
type Links struct {
	*Tokens
	base   string
	mailto string
}

// Tokens signs and checks what a link carries, without making links: what
// reading mailto unsubscribe requests needs. It is safe for concurrent use.
type Tokens struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// NewTokens returns Tokens signed with secret (at least 16 characters),
// valid for ttl (0: DefaultTTL), issued and checked by now (nil:
// time.Now).
func NewTokens(secret string, ttl time.Duration, now func() time.Time) (*Tokens, error) {
	if len(secret) < 16 {
		return nil, errors.New("unsubscribe secret: want at least 16 characters")
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Tokens{key: []byte(secret), ttl: ttl, now: now}, nil
}

// New returns Links for cfg.
func New(cfg Config) (*Links, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("unsubscribe URL %q: want an absolute http(s) URL such as https://mail.example.com", cfg.BaseURL)
	}
	if cfg.Mailto != "" {
		if err := CheckMailto(cfg.Mailto); err != nil {
			return nil, err
		}
	}
	t, err := NewTokens(cfg.Secret, cfg.TTL, cfg.Now)
	if err != nil {
		return nil, err
	}
	return &Links{Tokens: t, base: strings.TrimSuffix(cfg.BaseURL, "/"), mailto: cfg.Mailto}, nil
}

// CheckMailto reports what is wrong with an unsubscribe mailbox address:
// it must be a bare address (no name, no angle brackets) that needs no
// escaping in a mailto: URL.
func CheckMailto(addr string) error {
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Address != addr || a.Name != "" {
		return fmt.Errorf("unsubscribe mailbox %q: want a bare email address such as unsubscribe@mail.example.com", addr)
	}
	local, domain, _ := strings.Cut(addr, "@")
	for _, part := range []string{local, domain} {
		if part == "" || strings.Trim(part, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_+") != "" {
			return fmt.Errorf("unsubscribe mailbox %q: only letters, digits and . - _ + are allowed", addr)
		}
	}
	return nil
}

// sign is the signature of a link; parts are length-prefixed so that no
// two tuples sign alike. Legacy links sign the customer id alone.
func (l *Tokens) sign(parts ...string) string {
	m := hmac.New(sha256.New, l.key)
	if len(parts) == 1 {
		m.Write([]byte(parts[0]))
	} else {
		for _, p := range parts {
			fmt.Fprintf(m, "%d:%s", len(p), p)
		}
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// URL is the unsubscribe link for a customer in an email of campaign,
// issued now.
func (l *Links) URL(customerID, campaign string) string {
	issued := strconv.FormatInt(l.now().Unix(), 10)
	q := url.Values{"c": {customerID}, "k": {campaign}, "i": {issued}, "t": {l.sign("v2", customerID, campaign, issued)}}
	return l.base + Path + "?" + q.Encode()
}

// Errors of Check.
var (
	ErrInvalid = errors.New("unsubscribe link is not valid")
	ErrExpired = errors.New("unsubscribe link has expired")
)

// Check returns the customer and campaign a link's query was signed for,
// or ErrInvalid or ErrExpired.
func (l *Tokens) Check(q url.Values) (customerID, campaign string, err error) {
	customerID, token := q.Get("c"), q.Get("t")
	if customerID == "" || token == "" {
		return "", "", ErrInvalid
	}
	issued := q.Get("i")
	if issued == "" && !q.Has("k") { // a legacy link
		if !hmac.Equal([]byte(token), []byte(l.sign(customerID))) {
			return "", "", ErrInvalid
		}
		return customerID, "", nil
	}
	campaign = q.Get("k")
	if !hmac.Equal([]byte(token), []byte(l.sign("v2", customerID, campaign, issued))) {
		return "", "", ErrInvalid
	}
	at, err := strconv.ParseInt(issued, 10, 64)
	if err != nil {
		return "", "", ErrInvalid
	}
	if l.now().Sub(time.Unix(at, 0)) > l.ttl {
		return "", "", ErrExpired
	}
	return customerID, campaign, nil
}

// SubjectPrefix starts the subject of a mailto unsubscribe request; the
// token follows it.
const SubjectPrefix = "unsubscribe-"

// Token is what a mailto unsubscribe request carries in its subject after
// SubjectPrefix: the customer, the campaign and the issue time, signed like
// a link. It uses only letters, digits, "-", "_" and ".", so it needs no
// escaping in a URL or a subject.
func (l *Tokens) Token(customerID, campaign string) string {
	issued := strconv.FormatInt(l.now().Unix(), 10)
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(customerID)) + "." + enc.EncodeToString([]byte(campaign)) + "." + issued + "." +
		l.sign("v2", customerID, campaign, issued)
}

// CheckToken returns the customer and campaign a Token was signed for, or
// ErrInvalid or ErrExpired.
func (l *Tokens) CheckToken(token string) (customerID, campaign string, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 4 {
		return "", "", ErrInvalid
	}
	enc := base64.RawURLEncoding
	c, err1 := enc.DecodeString(parts[0])
	k, err2 := enc.DecodeString(parts[1])
	if err1 != nil || err2 != nil || len(c) == 0 {
		return "", "", ErrInvalid
	}
	return l.Check(url.Values{"c": {string(c)}, "k": {string(k)}, "i": {parts[2]}, "t": {parts[3]}})
}

// Mailto is the mailto: unsubscribe address for a customer in an email of
// campaign, issued now; "" without a Mailto mailbox.
func (l *Links) Mailto(customerID, campaign string) string {
	if l.mailto == "" {
		return ""
	}
	return "mailto:" + l.mailto + "?subject=" + SubjectPrefix + l.Token(customerID, campaign)
}

// Unsubscriber withdraws a customer's consent; campaign is the campaign
// whose email carried the link, "" when unknown.
type Unsubscriber func(ctx context.Context, customerID, campaign string) error

// Handler serves Path. GET shows a page with a confirm button, because
// link scanners fetch every URL of an email; POST (the button, or a mail
// client's one-click request) unsubscribes.
func Handler(l *Links, unsubscribe Unsubscriber, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, campaign, err := l.Check(r.URL.Query())
		switch {
		case errors.Is(err, ErrExpired):
			http.Error(w, "This unsubscribe link has expired. Please use the link in a more recent email.", http.StatusBadRequest)
			return
		case err != nil:
			http.Error(w, "This unsubscribe link is not valid.", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			page.Execute(w, pageData{Action: r.URL.RequestURI()})
		case http.MethodPost:
			if err := unsubscribe(r.Context(), id, campaign); err != nil {
				log.Error("unsubscribe failed", "customer_id", id, "campaign", campaign, "err", err)
				http.Error(w, "Something went wrong; please try again.", http.StatusServiceUnavailable)
				return
			}
			log.Info("customer unsubscribed", "customer_id", id, "campaign", campaign)
			page.Execute(w, pageData{Done: true})
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	})
}

type pageData struct {
	Action string
	Done   bool
}

var page = template.Must(template.New("unsubscribe").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Unsubscribe</title></head>
<body style="font-family:Helvetica,Arial,sans-serif;max-width:480px;margin:48px auto;padding:0 16px;color:#333">
{{if .Done}}<h1>You are unsubscribed</h1><p>You will not receive these emails any more.</p>
{{else}}<h1>Unsubscribe</h1><p>Stop receiving these emails?</p>
<form method="post" action="{{.Action}}"><button type="submit" style="padding:10px 20px;font-size:16px">Unsubscribe</button></form>
{{end}}</body></html>
`))
