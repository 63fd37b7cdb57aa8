package unsubscribe_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"nurture/internal/unsubscribe"
)

const secret = "0123456789abcdef-secret"

func TestNewRefusesBadConfig(t *testing.T) {
	for _, tt := range []struct{ base, secret, want string }{
		{"mail.example.com", secret, `unsubscribe URL "mail.example.com": want an absolute http(s) URL such as https://mail.example.com`},
		{"ftp://x", secret, `unsubscribe URL "ftp://x": want an absolute http(s) URL such as https://mail.example.com`},
		{"https://mail.example.com", "short", "unsubscribe secret: want at least 16 characters"},
	} {
		if _, err := unsubscribe.New(unsubscribe.Config{BaseURL: tt.base, Secret: tt.secret}); err == nil || err.Error() != tt.want {
			t.Errorf("New(%q, %q) = %v, want %q", tt.base, tt.secret, err, tt.want)
		}
	}
}

// links returns Links whose clock reads *now.
func links(t *testing.T, now *time.Time, secret string) *unsubscribe.Links {
	t.Helper()
	l, err := unsubscribe.New(unsubscribe.Config{BaseURL: "https://mail.example.com/", Secret: secret, TTL: 48 * time.Hour,
		Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func query(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if u.Host != "mail.example.com" || u.Path != "/unsubscribe" {
		t.Fatalf("URL = %s", raw)
	}
	return u.Query()
}

func TestLinks(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	l := links(t, &now, secret)
	q := query(t, l.URL("c 1&x", "winback"))
	if id, camp, err := l.Check(q); err != nil || id != "c 1&x" || camp != "winback" {
		t.Fatalf("Check(own link) = %q, %q, %v", id, camp, err)
	}
	for name, change := range map[string]func(url.Values){
		"another customer":  func(v url.Values) { v.Set("c", "c2") },
		"another campaign":  func(v url.Values) { v.Set("k", "onboarding") },
		"a later issue":     func(v url.Values) { v.Set("i", "9999999999") },
		"a tampered token":  func(v url.Values) { v.Set("t", v.Get("t")[:10]+"AAAA") },
		"no token":          func(v url.Values) { v.Del("t") },
		"no customer":       func(v url.Values) { v.Del("c") },
		"no campaign field": func(v url.Values) { v.Del("k") },
	} {
		v := url.Values{}
		for k, vs := range q {
			v[k] = append([]string(nil), vs...)
		}
		change(v)
		if _, _, err := l.Check(v); !errors.Is(err, unsubscribe.ErrInvalid) {
			t.Errorf("%s: Check = %v, want ErrInvalid", name, err)
		}
	}
	var other = links(t, &now, secret+"x")
	if _, _, err := other.Check(q); !errors.Is(err, unsubscribe.ErrInvalid) {
		t.Errorf("another secret: Check = %v, want ErrInvalid", err)
	}
	// The link works for its TTL after it was issued, and not after.
	now = now.Add(48 * time.Hour)
	if _, _, err := l.Check(q); err != nil {
		t.Errorf("at the TTL: %v", err)
	}
	now = now.Add(time.Second)
	if _, _, err := l.Check(q); !errors.Is(err, unsubscribe.ErrExpired) {
		t.Errorf("past the TTL: %v, want ErrExpired", err)
	}
}

// TestLegacyLinks: emails sent before links named a campaign and a time
// carry a token over the customer id alone; they keep working.
func TestLegacyLinks(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	l := links(t, &now, secret)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("c1"))
	legacy := url.Values{"c": {"c1"}, "t": {base64.RawURLEncoding.EncodeToString(m.Sum(nil))}}
	if id, camp, err := l.Check(legacy); err != nil || id != "c1" || camp != "" {
		t.Errorf("legacy link: %q, %q, %v", id, camp, err)
	}
	legacy.Set("c", "c2")
	if _, _, err := l.Check(legacy); !errors.Is(err, unsubscribe.ErrInvalid) {
		t.Errorf("legacy token for another customer: %v", err)
	}
}

func TestHandler(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	l := links(t, &now, secret)
	var got []string
	h := unsubscribe.Handler(l, func(_ context.Context, id, campaign string) error {
		got = append(got, id+"/"+campaign)
		return nil
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	target := strings.TrimPrefix(l.URL("c1", "winback"), "https://mail.example.com")

	do := func(method, target string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader("List-Unsubscribe=One-Click")))
		return rec.Code, rec.Body.String()
	}
	// A GET (a link scanner, or a person) only shows the confirm button.
	if code, body := do(http.MethodGet, target); code != 200 || !strings.Contains(body, `<form method="post"`) || len(got) != 0 {
		t.Errorf("GET: %d, unsubscribed %v, body %.200s", code, got, body)
	}
	if code, body := do(http.MethodPost, target); code != 200 || !strings.Contains(body, "You are unsubscribed") || len(got) != 1 || got[0] != "c1/winback" {
		t.Errorf("POST: %d, unsubscribed %v, body %.200s", code, got, body)
	}
	if code, _ := do(http.MethodPost, "/unsubscribe?c=c2&t=forged"); code != http.StatusBadRequest || len(got) != 1 {
		t.Errorf("forged POST: %d, unsubscribed %v", code, got)
	}
	if code, _ := do(http.MethodDelete, target); code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d", code)
	}
	now = now.Add(49 * time.Hour)
	if code, body := do(http.MethodPost, target); code != http.StatusBadRequest || !strings.Contains(body, "has expired") || len(got) != 1 {
		t.Errorf("expired POST: %d, unsubscribed %v, body %.200s", code, got, body)
	}
}

func TestToken(t *testing.T) {
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	l := links(t, &now, secret)
	tok := l.Token("c/1 é", "winback")
	if strings.Trim(tok, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "" {
		t.Fatalf("token %q has characters a subject or URL would need escaped", tok)
	}
	if id, camp, err := l.CheckToken(tok); err != nil || id != "c/1 é" || camp != "winback" {
		t.Fatalf("CheckToken = %q, %q, %v", id, camp, err)
	}
	// Another campaign, a changed signature, another secret, garbage.
	parts := strings.Split(tok, ".")
	other := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("other")) + "." + parts[2] + "." + parts[3]
	for _, bad := range []string{other, tok[:len(tok)-2] + "xx", links(t, &now, secret+"!").Token("c/1 é", "winback"), "", "a.b.c", "...."} {
		if _, _, err := l.CheckToken(bad); !errors.Is(err, unsubscribe.ErrInvalid) {
			t.Errorf("CheckToken(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	now = now.Add(49 * time.Hour)
	if _, _, err := l.CheckToken(tok); !errors.Is(err, unsubscribe.ErrExpired) {
		t.Errorf("after the TTL: %v, want ErrExpired", err)
	}
}

func TestMailto(t *testing.T) {
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	if got := links(t, &now, secret).Mailto("c1", "w"); got != "" {
		t.Errorf("without a mailbox: %q", got)
	}
	l, err := unsubscribe.New(unsubscribe.Config{BaseURL: "https://mail.example.com", Secret: secret, Mailto: "unsub@mail.example.com",
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.Mailto("c1", "w"), "mailto:unsub@mail.example.com?subject=unsubscribe-"+l.Token("c1", "w"); got != want {
		t.Errorf("Mailto = %q, want %q", got, want)
	}
	for addr, want := range map[string]string{
		"Unsub <u@x.com>": `unsubscribe mailbox "Unsub <u@x.com>": want a bare email address such as unsubscribe@mail.example.com`,
		"u@x.com?cc=a@b":  `unsubscribe mailbox "u@x.com?cc=a@b": want a bare email address such as unsubscribe@mail.example.com`,
		"u&x@x.com":       `unsubscribe mailbox "u&x@x.com": only letters, digits and . - _ + are allowed`,
		"nobody":          `unsubscribe mailbox "nobody": want a bare email address such as unsubscribe@mail.example.com`,
	} {
		if err := unsubscribe.CheckMailto(addr); err == nil || err.Error() != want {
			t.Errorf("CheckMailto(%q) = %v, want %q", addr, err, want)
		}
	}
}
