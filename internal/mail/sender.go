package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Sender delivers messages. Implementations are safe for concurrent use.
type Sender interface {
	// Send delivers m. On success reply is the server's final reply, such
	// as "250 2.0.0 Ok: queued as 4F2A", or a note saying where the file
	// outbox put the message. Errors are *SendError, or wrap ctx.Err() or
	// ErrClosed; see IsPermanent.
	Send(ctx context.Context, m *Message) (reply string, err error)
	// Close releases connections, waiting for sends in progress.
	Close() error
}

// Config configures a Sender.
type Config struct {
	// URL is the SMTP server (SMTP_URL):
	//
	//	smtp://[user:pass@]host[:port][?tls=none|starttls|tls][&insecure_skip_verify=true]
	//	smtps://[user:pass@]host[:port]        (same as tls=tls)
	//
	// tls absent: STARTTLS when the server offers it, plain otherwise
	// (port 25). tls=starttls: STARTTLS required (port 587). tls=tls:
	// implicit TLS (port 465). tls=none: never TLS (port 25). Without a
	// user there is no AUTH; with one, the mechanism is discovered and
	// PLAIN/LOGIN are used only on encrypted connections, except with
	// tls=none where the operator chose clear text. Empty: the file outbox.
	URL string
	// Conns is the number of SMTP connections kept open and shared by all
	// sends (default 4).
	Conns int
	// OutboxDir is where the file outbox writes
	// CAMPAIGN/CUSTOMER_ID-DELIVERY_ID.eml files (default "outbox").
	OutboxDir string
	// Timeout bounds connecting and each SMTP exchange (default 30s).
	Timeout time.Duration
	// HeloName is the name sent in EHLO (default: the host name).
	HeloName string
	// IdleTimeout closes a pooled connection that has been idle this long
	// before reusing it, as servers drop idle clients (default 30s).
	IdleTimeout time.Duration
	// MaxPerConn is how many messages one connection carries before it is
	// replaced, spreading load when the server is a balanced pool (default
	// 1000).
	MaxPerConn int
	// DKIM signs every message, over SMTP and in the file outbox
	// (DKIM_KEY_FILE, DKIM_SELECTOR); nil (the default): messages go
	// unsigned.
	DKIM *DKIM
	// Now dates each message (its Date field); default time.Now.
	Now func() time.Time

	// queue lets sends wait in the SMTP pool's channel instead of in Send:
	// 0 in use; tests set it to see a waiting send, and must not close the
	// sender while sends are still being handed over.
	queue int
}

func (c Config) withDefaults() Config {
	if c.Conns <= 0 {
		c.Conns = 4
	}
	if c.OutboxDir == "" {
		c.OutboxDir = "outbox"
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 30 * time.Second
	}
	if c.MaxPerConn <= 0 {
		c.MaxPerConn = 1000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// CheckURL reports what is wrong with an SMTP URL (see Config.URL)
// without connecting. Its error does not repeat the password.
func CheckURL(raw string) error {
	_, err := parseURL(raw)
	return err
}

// NewSender returns the file outbox when cfg.URL is empty and an SMTP
// connection pool otherwise. SMTP connections are opened on first use; run
// Check at start-up to fail fast. ctx bounds set-up only and is not kept.
func NewSender(ctx context.Context, cfg Config, log *slog.Logger) (Sender, error) {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.URL == "" {
		return newOutbox(ctx, cfg, log)
	}
	srv, err := parseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	return newPool(cfg, srv, log)
}

// Check verifies that mail can be sent: for SMTP it connects, says EHLO,
// negotiates TLS and AUTH as configured and quits, within a few seconds;
// for the file outbox it creates the directory and writes a file in it.
// Errors name the server or directory and the step that failed.
func Check(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	if cfg.URL == "" {
		return checkOutbox(cfg.OutboxDir)
	}
	srv, err := parseURL(cfg.URL)
	if err != nil {
		return err
	}
	cfg.Timeout = min(cfg.Timeout, checkTimeout)
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	return checkSMTP(ctx, cfg, srv)
}

const checkTimeout = 5 * time.Second

type tlsMode int

const (
	tlsOpportunistic tlsMode = iota // tls absent
	tlsStartTLS
	tlsImplicit
	tlsNone
)

func (m tlsMode) String() string {
	switch m {
	case tlsStartTLS:
		return "starttls"
	case tlsImplicit:
		return "tls"
	case tlsNone:
		return "none"
	}
	return "opportunistic"
}

type server struct {
	host, user, pass   string
	port               int
	tls                tlsMode
	insecureSkipVerify bool
}

func (s server) addr() string { return net.JoinHostPort(s.host, strconv.Itoa(s.port)) }

// parseURL parses SMTP_URL. Its errors never repeat the user info, which
// holds a password.
func parseURL(raw string) (server, error) {
	var s server
	const encode = "percent-encode special characters in the user name and password"
	u, err := url.Parse(raw)
	if err != nil {
		if strings.Contains(raw, "@") {
			return s, errors.New("invalid SMTP URL: cannot parse it; " + encode)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return s, fmt.Errorf("invalid SMTP URL: %v", err)
	}
	if strings.Contains(u.Path+u.RawQuery+u.Fragment, "@") {
		// A '/', '?' or '#' in the password ended the host part early.
		return s, errors.New("invalid SMTP URL: '@' after the host; " + encode)
	}
	switch u.Scheme {
	case "smtp":
	case "smtps":
		s.tls = tlsImplicit
	default:
		return s, fmt.Errorf("invalid SMTP URL: scheme %q, want smtp or smtps", u.Scheme)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return s, errors.New("invalid SMTP URL: no host, want smtp://[user:pass@]host[:port]")
	}
	if u.Path != "" && u.Path != "/" {
		return s, fmt.Errorf("invalid SMTP URL: unexpected path %q", u.Path)
	}
	if u.Fragment != "" {
		return s, fmt.Errorf("invalid SMTP URL: unexpected fragment %q", u.Fragment)
	}
	s.host = u.Hostname()
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
	}
	for key, vals := range u.Query() {
		val := vals[len(vals)-1]
		switch key {
		case "tls":
			mode, ok := map[string]tlsMode{"none": tlsNone, "starttls": tlsStartTLS, "tls": tlsImplicit}[val]
			switch {
			case !ok:
				return s, fmt.Errorf("invalid SMTP URL: tls=%q, want none, starttls or tls", val)
			case u.Scheme == "smtps" && mode != tlsImplicit:
				return s, fmt.Errorf("invalid SMTP URL: smtps:// is implicit TLS and contradicts tls=%s", val)
			}
			s.tls = mode
		case "insecure_skip_verify":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return s, fmt.Errorf("invalid SMTP URL: insecure_skip_verify=%q, want true or false", val)
			}
			s.insecureSkipVerify = b
		default:
			return s, fmt.Errorf("invalid SMTP URL: unknown parameter %q, want tls or insecure_skip_verify", key)
		}
	}
	if p := u.Port(); p != "" {
		s.port, err = strconv.Atoi(p)
		if err != nil || s.port < 1 || s.port > 65535 {
			return s, fmt.Errorf("invalid SMTP URL: port %q", p)
		}
	} else {
		s.port = map[tlsMode]int{tlsOpportunistic: 25, tlsNone: 25, tlsStartTLS: 587, tlsImplicit: 465}[s.tls]
	}
	if strings.ContainsAny(s.host, " /") {
		return s, fmt.Errorf("invalid SMTP URL: host %q", s.host)
	}
	return s, nil
}
