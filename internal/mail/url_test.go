package mail

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for raw, want := range map[string]server{
		"smtp://mail.example.com":                       {host: "mail.example.com", port: 25, tls: tlsOpportunistic},
		"smtp://mail.example.com?tls=none":              {host: "mail.example.com", port: 25, tls: tlsNone},
		"smtp://mail.example.com?tls=starttls":          {host: "mail.example.com", port: 587, tls: tlsStartTLS},
		"smtp://mail.example.com?tls=tls":               {host: "mail.example.com", port: 465, tls: tlsImplicit},
		"smtps://mail.example.com":                      {host: "mail.example.com", port: 465, tls: tlsImplicit},
		"smtps://mail.example.com:2465?tls=tls":         {host: "mail.example.com", port: 2465, tls: tlsImplicit},
		"smtp://u%40x:p%3Ass@[::1]:2525/":               {host: "::1", port: 2525, user: "u@x", pass: "p:ss"},
		"smtp://u@h?insecure_skip_verify=true&tls=none": {host: "h", port: 25, user: "u", tls: tlsNone, insecureSkipVerify: true},
	} {
		got, err := parseURL(raw)
		if err != nil || got != want {
			t.Errorf("parseURL(%q) = %+v, %v; want %+v", raw, got, err, want)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"smtp://u:secret@h:25?tls=none", "smtps://h", "smtp://u:secret@h:x", "smtp://%zz:secret@h", "smtp://u:12/secret@h", "smtp://u:12?secret@h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		s, err := parseURL(raw)
		if err != nil {
			// "secret" in the user info, and nowhere else, must not leak.
			_, rest, ok := strings.Cut(raw, "://")
			at := strings.LastIndex(rest, "@")
			if ok && at >= 0 && strings.Contains(rest[:at], "secret") &&
				!strings.Contains(rest[at:], "secret") && strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q repeats the password", err)
			}
			return
		}
		if s.host == "" || s.port < 1 || s.port > 65535 {
			t.Errorf("parseURL(%q) = %+v without error", raw, s)
		}
	})
}
