package tracking

import (
	"errors"
	"fmt"
	"html"
	"io"
	"regexp"
	"strings"

	"github.com/google/uuid"
	xhtml "golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Rewrite says what to track in one email.
type Rewrite struct {
	// Delivery is the delivery the email belongs to.
	Delivery uuid.UUID
	// Opens adds the open pixel to the HTML part; Clicks sends links
	// through the click redirect.
	Opens, Clicks bool
	// Keep are link targets left as they are, such as the email's
	// unsubscribe link.
	Keep []string
}

func (l *Links) keep(rw Rewrite, target string) bool {
	if !Trackable(target) || l.isOurs(target) {
		return true
	}
	for _, k := range rw.Keep {
		if target == k {
			return true
		}
	}
	return false
}

// HTML returns src with the href of every link (a and area elements) to
// an http(s) URL replaced by its click redirect, when rw.Clicks, and the
// open pixel before </body> (or at the end without one), when rw.Opens.
// Links to mailto:, tel:, anchors and relative URLs, rw.Keep and the HTTP
// role's own pages are left alone. Everything else is copied byte for
// byte.
func (l *Links) HTML(src string, rw Rewrite) (string, error) {
	if !rw.Opens && !rw.Clicks {
		return src, nil
	}
	var b strings.Builder
	b.Grow(len(src) + len(src)/4 + 256)
	z := xhtml.NewTokenizer(strings.NewReader(src))
	pixel := rw.Opens
	for {
		tt := z.Next()
		if tt == xhtml.ErrorToken {
			if errors.Is(z.Err(), io.EOF) {
				break
			}
			return "", fmt.Errorf("tracking: rewrite HTML: %w", z.Err())
		}
		raw := z.Raw() // valid until the next call of Next
		switch tt {
		case xhtml.StartTagToken, xhtml.SelfClosingTagToken:
			if !rw.Clicks {
				break
			}
			tok := z.Token()
			if tok.DataAtom != atom.A && tok.DataAtom != atom.Area {
				break
			}
			changed := false
			for i, a := range tok.Attr {
				if a.Namespace != "" || a.Key != "href" {
					continue
				}
				target := strings.TrimSpace(a.Val)
				if l.keep(rw, target) {
					continue
				}
				tok.Attr[i].Val = l.ClickURL(rw.Delivery, target)
				changed = true
			}
			if changed {
				b.WriteString(tok.String())
				continue
			}
		case xhtml.EndTagToken:
			if pixel {
				if name, _ := z.TagName(); atom.Lookup(name) == atom.Body {
					b.WriteString(l.pixel(rw.Delivery))
					pixel = false
				}
			}
		}
		b.Write(raw)
	}
	if pixel {
		b.WriteString(l.pixel(rw.Delivery))
	}
	return b.String(), nil
}

func (l *Links) pixel(delivery uuid.UUID) string {
	return `<img src="` + html.EscapeString(l.OpenURL(delivery)) +
		`" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0">`
}

// bareURL finds URLs in plain text; trimURL then takes off the
// punctuation that ends a sentence around them.
var bareURL = regexp.MustCompile(`(?i)\bhttps?://[^\s<>"]+`)

// Text returns src with every bare http(s) URL replaced by its click
// redirect, when rw.Clicks; rw.Keep and the HTTP role's own pages are
// left alone. Punctuation that closes a sentence or a parenthesis right
// after a URL stays outside it.
func (l *Links) Text(src string, rw Rewrite) string {
	if !rw.Clicks {
		return src
	}
	return bareURL.ReplaceAllStringFunc(src, func(m string) string {
		target, tail := trimURL(m)
		if l.keep(rw, target) {
			return m
		}
		return l.ClickURL(rw.Delivery, target) + tail
	})
}

// trimURL splits trailing punctuation off a URL found in text: a period,
// comma and the like, and a closing bracket or quote without its opening
// one in the URL.
func trimURL(m string) (target, tail string) {
	end := len(m)
	for end > 0 {
		c := m[end-1]
		switch {
		case strings.IndexByte(".,;:!?'*", c) >= 0:
			end--
			continue
		case c == ')' && strings.Count(m[:end], "(") < strings.Count(m[:end], ")"),
			c == ']' && strings.Count(m[:end], "[") < strings.Count(m[:end], "]"):
			end--
			continue
		}
		break
	}
	return m[:end], m[end:]
}
