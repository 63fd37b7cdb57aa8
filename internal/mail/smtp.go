package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// pool is the SMTP Sender: Conns long-lived connections, each carrying
// many messages one after another (see transact). A send borrows a
// connection from the slots channel and gives it back.
type pool struct {
	cfg    Config
	srv    server
	log    *slog.Logger
	slots  chan *conn
	done   chan struct{}
	closed sync.Once
	bufs   sync.Pool // *bytes.Buffer, for rendering messages
	// senders are the From addresses seen, parsed.
	senders senderCache
	// eightBit is whether the last connection made offered 8BITMIME.
	eightBit atomic.Bool
}

// conn is one pool slot: a go-mail client (configuration, TLS, AUTH) and,
// when connected, its SMTP session. Only the goroutine holding the slot
// touches it.
type conn struct {
	id       int
	client   *gomail.Client
	session  *smtp.Client // nil when not connected
	raw      net.Conn     // the TCP connection under session
	dialing  *watch       // the watch a dial in progress reports its conn to
	tcpUp    bool         // the last dial got a TCP connection
	ext      extensions   // what the session's server offers
	sent     int          // messages carried by this session
	lastUsed time.Time    // end of the last exchange
	out      []byte       // commands or dot-stuffed data, for one write
}

func newPool(cfg Config, srv server, log *slog.Logger) (*pool, error) {
	p := &pool{
		cfg:   cfg,
		srv:   srv,
		log:   log.With("smtp", srv.addr()),
		slots: make(chan *conn, cfg.Conns),
		done:  make(chan struct{}),
	}
	p.bufs.New = func() any { return new(bytes.Buffer) }
	for i := range cfg.Conns {
		c := &conn{id: i}
		client, err := newClient(cfg, srv, c.dial(srv))
		if err != nil {
			return nil, err
		}
		c.client = client
		p.slots <- c
	}
	return p, nil
}

// newClient configures a go-mail client for srv. dial is the TCP (and, for
// implicit TLS, TLS) dialer: owning the connection lets a cancelled context
// interrupt an exchange, which go-mail's Send cannot.
func newClient(cfg Config, srv server, dial gomail.DialContextFunc) (*gomail.Client, error) {
	opts := []gomail.Option{
		gomail.WithPort(srv.port),
		gomail.WithTimeout(cfg.Timeout),
		gomail.WithDialContextFunc(dial),
		gomail.WithTLSConfig(srv.tlsConfig()),
		// The pool checks idle connections itself; go-mail's NOOP would
		// cost a round trip.
		gomail.WithoutNoop(),
	}
	switch srv.tls {
	case tlsNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case tlsStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case tlsOpportunistic, tlsImplicit:
		// With implicit TLS the dialer returns a *tls.Conn and go-mail, seeing
		// no STARTTLS offer, records the session as encrypted, which AUTH
		// discovery needs. (gomail.WithSSL would ignore a custom dialer.)
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if cfg.HeloName != "" {
		opts = append(opts, gomail.WithHELO(cfg.HeloName))
	}
	if srv.user != "" {
		opts = append(opts, gomail.WithUsername(srv.user), gomail.WithPassword(srv.pass))
		if srv.tls == tlsNone {
			opts = append(opts, gomail.WithOpportunisticSMTPAuth(
				gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1, gomail.SMTPAuthCramMD5,
				gomail.SMTPAuthPlainNoEnc, gomail.SMTPAuthLoginNoEnc))
		} else {
			opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover))
		}
	}
	client, err := gomail.NewClient(srv.host, opts...)
	if err != nil {
		return nil, fmt.Errorf("configure SMTP client for %s: %w", srv.addr(), err)
	}
	return client, nil
}

func (s server) tlsConfig() *tls.Config {
	return &tls.Config{
		ServerName:         s.host,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: s.insecureSkipVerify, //nolint:gosec // opt-in for test servers
	}
}

// dial returns the dialer of c's client. It records the TCP connection so
// that the watch of the dial in progress can close it.
func (c *conn) dial(srv server) gomail.DialContextFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		raw, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c.tcpUp = true
		if !c.dialing.set(raw) {
			return nil, context.Cause(ctx)
		}
		c.raw = raw
		if srv.tls != tlsImplicit {
			return raw, nil
		}
		tc := tls.Client(raw, srv.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		return tc, nil
	}
}

// watch closes a connection when a context ends mid-exchange. go-mail
// resets I/O deadlines itself, so closing is the only sure interrupt.
type watch struct {
	mu    sync.Mutex
	conn  net.Conn
	fired bool
}

// set records conn, or closes it and reports false if the context ended.
func (w *watch) set(conn net.Conn) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fired {
		conn.Close()
		return false
	}
	w.conn = conn
	return true
}

func (w *watch) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fired = true
	if w.conn != nil {
		w.conn.Close()
	}
}

// guard runs fire when ctx ends; the returned stop reports whether it did.
func (w *watch) guard(ctx context.Context) (stop func() (interrupted bool)) {
	stopAfter := context.AfterFunc(ctx, w.fire)
	return func() bool {
		if stopAfter() {
			return false
		}
		// fire has started; wait for it so that the caller sees its effect.
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.fired
	}
}

func (c *conn) connect(ctx context.Context) error {
	w := &watch{}
	c.dialing, c.tcpUp = w, false
	stop := w.guard(ctx)
	session, err := c.client.DialToSMTPClientWithContext(ctx)
	interrupted := stop()
	c.dialing = nil
	if err == nil && interrupted {
		session.Close()
		err = context.Cause(ctx)
	}
	if err != nil {
		if c.raw != nil {
			c.raw.Close()
			c.raw = nil
		}
		return err
	}
	c.session, c.sent, c.lastUsed = session, 0, time.Now()
	c.ext = serverExtensions(session)
	return nil
}

// drop closes the session without QUIT: it is broken or its state unknown.
func (c *conn) drop() {
	if c.session != nil {
		c.session.Close()
	}
	if c.raw != nil {
		c.raw.Close()
	}
	c.session, c.raw = nil, nil
}

// quit ends a session politely, without waiting long for a server that
// may have gone.
func (c *conn) quit() {
	if c.session != nil {
		_ = c.session.UpdateDeadline(quitTimeout)
		_ = c.client.CloseWithSMTPClient(c.session)
	}
	c.drop()
}

const quitTimeout = 2 * time.Second

func (p *pool) acquire(ctx context.Context) (*conn, error) {
	// Checked first because select picks at random among ready cases.
	select {
	case <-p.done:
		return nil, ErrClosed
	default:
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("wait for an SMTP connection: %w", context.Cause(ctx))
	}
	select {
	case c := <-p.slots:
		return c, nil
	case <-p.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for an SMTP connection: %w", context.Cause(ctx))
	}
}

func (p *pool) Send(ctx context.Context, m *Message) (string, error) {
	buf := p.bufs.Get().(*bytes.Buffer)
	defer p.putBuf(buf)
	// Rendered before a connection is taken, in the encoding the last
	// connection allowed; rendered again in the rare case this one differs.
	r, err := m.render(buf, p.cfg.Now(), p.cfg.DKIM, p.eightBit.Load(), &p.senders)
	if err != nil {
		return "", err
	}
	c, err := p.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer func() { p.slots <- c }()

	if c.session != nil && (time.Since(c.lastUsed) > p.cfg.IdleTimeout || c.sent >= p.cfg.MaxPerConn) {
		c.quit()
	}
	for attempt := 0; ; attempt++ {
		reused := c.session != nil
		if !reused {
			if err := c.connect(ctx); err != nil {
				if ctx.Err() != nil {
					return "", fmt.Errorf("connect to SMTP server %s: %w", p.srv.addr(), context.Cause(ctx))
				}
				return "", temporary(err, "connect to SMTP server %s", p.srv.addr())
			}
			p.eightBit.Store(c.ext.eightBitMIME)
			p.log.Debug("smtp connected", "conn", c.id, "delivery_id", m.ID,
				"pipelining", c.ext.pipelining, "8bitmime", c.ext.eightBitMIME)
		}
		if r.eightBit && !c.ext.eightBitMIME {
			if r, err = m.render(buf, p.cfg.Now(), p.cfg.DKIM, false, &p.senders); err != nil {
				return "", err
			}
		}
		reply, err := p.sendOn(ctx, c, r)
		if err == nil {
			return reply, nil
		}
		// A server may drop a connection that sat in the pool; that shows as
		// a failure before anything was accepted. Retry once on a new one.
		var se *SendError
		if reused && attempt == 0 && ctx.Err() == nil && errors.As(err, &se) && stale(se) {
			p.log.Debug("smtp connection went stale, reconnecting", "conn", c.id, "delivery_id", m.ID, "error", err)
			continue
		}
		return "", err
	}
}

// maxPooledBuf is the largest message buffer kept for reuse.
const maxPooledBuf = 1 << 20

func (p *pool) putBuf(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBuf {
		p.bufs.Put(buf)
	}
}

// sendOn sends r on c's open session and leaves c either ready for the
// next message or disconnected.
func (p *pool) sendOn(ctx context.Context, c *conn, r *rendered) (string, error) {
	w := &watch{conn: c.raw}
	stop := w.guard(ctx)
	reply, err := c.transact(r, p.cfg.Timeout)
	interrupted := stop()
	c.lastUsed = time.Now()
	c.sent++
	if cap(c.out) > maxPooledBuf {
		c.out = nil // not kept for a rare large message
	}

	if err == nil {
		// The server took the message: the context ending now must not
		// turn it into a failure and a second copy.
		if interrupted {
			c.drop()
		}
		return reply, nil
	}
	if interrupted {
		c.drop()
		return "", fmt.Errorf("send to %s: %w", p.srv.addr(), context.Cause(ctx))
	}
	se := classify(err, c.ext.enhancedCodes)
	switch {
	case se.Code < 400 || se.Code == 421:
		// No reply (the connection broke), the server is closing it, or a
		// reply that makes no sense here: the session's state is unknown.
		c.drop()
	default:
		// The server refused this message; RSET so the session is clean for
		// the next one, whatever step it failed at.
		if rerr := c.session.Reset(); rerr != nil {
			c.drop()
		}
	}
	return "", se
}

func (p *pool) Close() error {
	p.closed.Do(func() {
		close(p.done)
		// Take every slot back, waiting for sends in progress.
		for range cap(p.slots) {
			c := <-p.slots
			c.quit()
		}
	})
	return nil
}

// checkSMTP dials, says EHLO, does TLS and AUTH as configured and QUITs.
func checkSMTP(ctx context.Context, cfg Config, srv server) error {
	c := &conn{}
	client, err := newClient(cfg, srv, c.dial(srv))
	if err != nil {
		return err
	}
	c.client = client
	if err := c.connect(ctx); err != nil {
		step := "connect"
		if c.tcpUp {
			step = "greeting/EHLO/STARTTLS/AUTH"
		}
		return fmt.Errorf("SMTP server %s (tls=%s): %s: %w", srv.addr(), srv.tls, step, err)
	}
	if err := c.client.CloseWithSMTPClient(c.session); err != nil {
		c.drop()
		return fmt.Errorf("SMTP server %s (tls=%s): QUIT: %w", srv.addr(), srv.tls, err)
	}
	c.drop()
	return nil
}
