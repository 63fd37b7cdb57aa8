package unsubscribe_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"nurture/internal/unsubscribe"
)

const secret = "0123456789abcdef-secret"

func TestNewRefusesBadConfig(t *testing.T) {
	for _, tt := range []struct{ base, secret, want string }{
		{"mail.example.com", secret, `unsubscribe URL "mail.example.com": want an absolute http(s) URL such as https://mail.example.com`},
		{"ftp://x", secret, `unsubscribe URL "ftp://x": want an absolute http(s) URL such as https://mail.example.com`},
		{"https://mail.example.com", "short", "unsubscribe secret: want at least 16 characters"},
	} {
		if _, err := unsubscribe.New(tt.base, tt.secret); err == nil || err.Error() != tt.want {
			t.Errorf("New(%q, %q) = %v, want %q", tt.base, tt.secret, err, tt.want)
		}
	}
}

func TestLinks(t *testing.T) {
	l, err := unsubscribe.New("https://mail.example.com/", secret)
	if err != nil {
		t.Fatal(err)
	}
	raw := l.URL("c 1&x")
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if u.Host != "mail.example.com" || u.Path != "/unsubscribe" || u.Query().Get("c") != "c 1&x" {
		t.Fatalf("URL = %s", raw)
	}
	tok := u.Query().Get("t")
	if !l.Valid("c 1&x", tok) {
		t.Error("the link's own token is not valid")
	}
	if l.Valid("c2", tok) || l.Valid("c 1&x", tok[:len(tok)-1]+"A") || l.Valid("", "") {
		t.Error("a token for another customer, a tampered token or an empty one is valid")
	}
	other, _ := unsubscribe.New("https://mail.example.com", secret+"x")
	if other.Valid("c 1&x", tok) {
		t.Error("a token signed with another secret is valid")
	}
}

func TestHandler(t *testing.T) {
	l, _ := unsubscribe.New("https://mail.example.com", secret)
	var got []string
	h := unsubscribe.Handler(l, func(_ context.Context, id string) error {
		got = append(got, id)
		return nil
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	target := strings.TrimPrefix(l.URL("c1"), "https://mail.example.com")

	do := func(method, target string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader("List-Unsubscribe=One-Click")))
		return rec.Code, rec.Body.String()
	}
	// A GET (a link scanner, or a person) only shows the confirm button.
	if code, body := do(http.MethodGet, target); code != 200 || !strings.Contains(body, `<form method="post"`) || len(got) != 0 {
		t.Errorf("GET: %d, unsubscribed %v, body %.200s", code, got, body)
	}
	if code, body := do(http.MethodPost, target); code != 200 || !strings.Contains(body, "You are unsubscribed") || len(got) != 1 || got[0] != "c1" {
		t.Errorf("POST: %d, unsubscribed %v, body %.200s", code, got, body)
	}
	if code, _ := do(http.MethodPost, "/unsubscribe?c=c2&t=forged"); code != http.StatusBadRequest || len(got) != 1 {
		t.Errorf("forged POST: %d, unsubscribed %v", code, got)
	}
	if code, _ := do(http.MethodDelete, target); code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d", code)
	}
}
