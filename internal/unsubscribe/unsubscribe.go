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
	"net/url"
	"strings"
)

// Path is where the HTTP role serves unsubscribe links.
const Path = "/unsubscribe"

// Links signs and checks unsubscribe links. It is safe for concurrent use.
type Links struct {
	base string
	key  []byte
}

// New returns Links under baseURL (the public address of the HTTP role,
// e.g. https://mail.example.com), signed with secret (at least 16 bytes).
func New(baseURL, secret string) (*Links, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("unsubscribe URL %q: want an absolute http(s) URL such as https://mail.example.com", baseURL)
	}
	if len(secret) < 16 {
		return nil, errors.New("unsubscribe secret: want at least 16 characters")
	}
	return &Links{base: strings.TrimSuffix(baseURL, "/"), key: []byte(secret)}, nil
}

func (l *Links) token(customerID string) string {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(customerID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// URL is the unsubscribe link of a customer.
func (l *Links) URL(customerID string) string {
	return l.base + Path + "?c=" + url.QueryEscape(customerID) + "&t=" + l.token(customerID)
}

// Valid reports whether token was signed for customerID.
func (l *Links) Valid(customerID, token string) bool {
	return customerID != "" && hmac.Equal([]byte(token), []byte(l.token(customerID)))
}

// Unsubscriber withdraws a customer's consent.
type Unsubscriber func(ctx context.Context, customerID string) error

// Handler serves Path. GET shows a page with a confirm button, because
// link scanners fetch every URL of an email; POST (the button, or a mail
// client's one-click request) unsubscribes.
func Handler(l *Links, unsubscribe Unsubscriber, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, token := r.URL.Query().Get("c"), r.URL.Query().Get("t")
		if !l.Valid(id, token) {
			http.Error(w, "This unsubscribe link is not valid.", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			page.Execute(w, pageData{Action: r.URL.RequestURI()})
		case http.MethodPost:
			if err := unsubscribe(r.Context(), id); err != nil {
				log.Error("unsubscribe failed", "customer_id", id, "err", err)
				http.Error(w, "Something went wrong; please try again.", http.StatusServiceUnavailable)
				return
			}
			log.Info("customer unsubscribed", "customer_id", id)
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
