package tracking

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"nurture/internal/metrics"
	"nurture/internal/store"
)

// scanners are user agents of link scanners and mail security gateways,
// and of HTTP libraries no person reads mail with, matched as lower-case
// substrings. Image proxies that fetch on a person's behalf when the
// email is opened (Gmail's GoogleImageProxy, YahooMailProxy) are not here:
// their opens are real.
var scanners = []string{
	"barracuda", "mimecast", "proofpoint", "messagelabs", "symantec", "trendmicro", "trend micro",
	"sophos", "fireeye", "ironport", "forcepoint", "bingpreview", "safelinks",
	"bot/", "bot;", "crawler", "spider", "headlesschrome", "phantomjs",
	"curl/", "wget/", "python-requests", "python-urllib", "go-http-client", "java/", "okhttp", "libwww-perl",
}

// Scanner reports whether a user agent is a link scanner's, a mail
// security proxy's, or none at all: its hits are machine-made.
func Scanner(userAgent string) bool {
	ua := strings.ToLower(strings.TrimSpace(userAgent))
	if ua == "" {
		return true
	}
	for _, s := range scanners {
		if strings.Contains(ua, s) {
			return true
		}
	}
	return false
}

// gif is a 1x1 transparent GIF.
var gif = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

// Handlers returns the open pixel and click redirect handlers, by
// pattern, for the HTTP role's public pages. A request is answered first
// and its hit handed to rec afterwards, so PostgreSQL being slow or down
// never holds up a pixel or a redirect. now times the hits (default
// time.Now).
//
// A forged or altered token answers 400 with a plain page, never a
// redirect. An expired one is answered as a valid one (the pixel, the
// redirect to the URL it was signed for: links in old emails keep
// working) but not recorded.
func Handlers(l *Links, rec *Recorder, now func() time.Time, m *metrics.Metrics, log *slog.Logger) map[string]http.Handler {
	if now == nil {
		now = time.Now
	}
	serve := func(kind Kind, answer func(http.ResponseWriter, *http.Request, Token)) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Allow", "GET, HEAD")
				http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
				return
			}
			at := now()
			t, err := l.Check(kind, r.PathValue("token"))
			switch {
			case errors.Is(err, ErrExpired):
				m.TrackingRejected(kind.String(), "expired")
			case err != nil:
				m.TrackingRejected(kind.String(), "invalid")
				log.Debug("invalid tracking token", "kind", kind.String(), "path", r.URL.Path)
				w.Header().Set("Cache-Control", "no-store")
				http.Error(w, "This link is not valid.", http.StatusBadRequest)
				return
			}
			answer(w, r, t)
			if err == nil && r.Method == http.MethodGet {
				rec.Record(store.Hit{Delivery: t.Delivery, Click: kind == Click, URL: t.Target, At: at, Scanner: Scanner(r.UserAgent())})
			}
		})
	}
	return map[string]http.Handler{
		OpenPath + "{token}": serve(Open, func(w http.ResponseWriter, r *http.Request, _ Token) {
			h := w.Header()
			h.Set("Content-Type", "image/gif")
			h.Set("Cache-Control", "no-store, no-cache, must-revalidate, max-age=0")
			h.Set("Pragma", "no-cache")
			h.Set("Expires", "0")
			w.WriteHeader(http.StatusOK)
			if r.Method == http.MethodGet {
				w.Write(gif)
			}
		}),
		ClickPath + "{token}": serve(Click, func(w http.ResponseWriter, r *http.Request, t Token) {
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Referrer-Policy", "no-referrer")
			w.Header().Set("Location", t.Target)
			w.WriteHeader(http.StatusFound)
		}),
	}
}
