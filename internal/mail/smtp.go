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
// many messages one after another. Each connection has a goroutine that
// takes sends from the reqs channel (see serve). When the server offers
// PIPELINING and another send is waiting as a message's data goes out,
// that send's envelope goes in the same write: one round trip a message
// instead of two.
type pool struct {
	cfg    Config
	srv    server
	log    *slog.Logger
	reqs   chan *request
	done   chan struct{}
	serves sync.WaitGroup // the connections' goroutines
	closed sync.Once
	bufs   sync.Pool // *bytes.Buffer, for rendering messages
	// senders are the From addresses seen, parsed.
	senders senderCache
	// eightBit is whether the last connection made offered 8BITMIME.
	eightBit atomic.Bool
}

// conn is one of the pool's connections: a go-mail client
// (configuration, TLS, AUTH) and, when connected, its SMTP session. Only
// its serve goroutine touches it.
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
	next     []byte       // the envelope of the next message, for out
	// dataOpen says the server answered DATA with 354 although it refused
	// an earlier command of the envelope.
	dataOpen bool
}

// request is one Send handed to a connection's goroutine, which answers
// on done exactly once, unless Send gave it up first (state).
type request struct {
	ctx  context.Context
	m    *Message
	r    *rendered
	buf  *bytes.Buffer // r's, for rendering it again without 8BITMIME
	done chan result
	// state is handed (0), started (1): its connection sends it, or
	// given up (2): its context ended before that, and Send returned.
	state atomic.Int32
}

const (
	requestHanded int32 = iota
	requestStarted
	requestGivenUp
)

type result struct {
	reply string
	err   error
}

func (q *request) answer(reply string, err error) { q.done <- result{reply, err} }

func newPool(cfg Config, srv server, log *slog.Logger) (*pool, error) {
	p := &pool{
		cfg:  cfg,
		srv:  srv,
		log:  log.With("smtp", srv.addr()),
		reqs: make(chan *request, cfg.queue),
		done: make(chan struct{}),
	}
	p.bufs.New = func() any { return new(bytes.Buffer) }
	conns := make([]*conn, cfg.Conns)
	for i := range conns {
		c := &conn{id: i}
		client, err := newClient(cfg, srv, c.dial(srv))
		if err != nil {
			return nil, err
		}
		c.client = client
		conns[i] = c
	}
	for _, c := range conns {
		p.serves.Add(1)
		go p.serve(c)
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

// waitError is the error of a send whose context ended before a
// connection started sending it: nothing of it reached the server.
func waitError(ctx context.Context) error {
	return fmt.Errorf("wait for an SMTP connection: %w", context.Cause(ctx))
}

func (p *pool) Send(ctx context.Context, m *Message) (string, error) {
	// Checked first because select picks at random among ready cases.
	select {
	case <-p.done:
		return "", ErrClosed
	default:
	}
	if ctx.Err() != nil {
		return "", waitError(ctx)
	}
	buf := p.bufs.Get().(*bytes.Buffer)
	defer p.putBuf(buf)
	// Rendered before a connection is taken, in the encoding the last
	// connection allowed; rendered again in the rare case this one differs.
	r, err := m.render(buf, p.cfg.Now(), p.cfg.DKIM, p.eightBit.Load(), &p.senders)
	if err != nil {
		return "", err
	}
	q := &request{ctx: ctx, m: m, r: r, buf: buf, done: make(chan result, 1)}
	select {
	case p.reqs <- q:
	case <-p.done:
		return "", ErrClosed
	case <-ctx.Done():
		return "", waitError(ctx)
	}
	// A connection took it, and may have written its envelope behind
	// another message. Until it starts sending it, the send can still be
	// given up; after that the connection answers, also when ctx ends.
	select {
	case res := <-q.done:
		return res.reply, res.err
	case <-ctx.Done():
		if q.state.CompareAndSwap(requestHanded, requestGivenUp) {
			return "", waitError(ctx)
		}
		res := <-q.done
		return res.reply, res.err
	}
}

// serve carries c's sends until the pool closes: each send that a
// connection took is answered, and one whose envelope went out behind the
// previous message is sent next.
func (p *pool) serve(c *conn) {
	defer p.serves.Done()
	var (
		q      *request
		queued bool // q's envelope is written on c's session
	)
	for {
		if q == nil {
			select {
			case q = <-p.reqs:
				queued = false
			case <-p.done:
				c.quit()
				return
			}
		}
		q, queued = p.send(c, q, queued)
	}
}

// send sends q on c and answers it. queued says q's envelope is already
// written on c's session, behind the previous message. It returns the
// next send when it took one and wrote its envelope behind q's message
// (queued true), or must send it anew (queued false: its envelope went
// out on a session that broke, so nothing of it was delivered).
func (p *pool) send(c *conn, q *request, queued bool) (*request, bool) {
	if !q.state.CompareAndSwap(requestHanded, requestStarted) || q.ctx.Err() != nil {
		// Given up, or about to be: nothing of it is sent. If its envelope
		// is on the session, the server may be waiting for its data, and
		// only closing the session undoes that.
		if queued {
			c.drop()
		}
		if q.state.Load() == requestStarted {
			q.answer("", waitError(q.ctx))
		}
		return nil, false
	}
	if !queued && c.session != nil && (time.Since(c.lastUsed) > p.cfg.IdleTimeout || c.sent >= p.cfg.MaxPerConn) {
		c.quit()
	}
	for attempt := 0; ; attempt++ {
		reused := c.session != nil
		if !reused {
			queued = false
			if err := c.connect(q.ctx); err != nil {
				if q.ctx.Err() != nil {
					q.answer("", fmt.Errorf("connect to SMTP server %s: %w", p.srv.addr(), context.Cause(q.ctx)))
				} else {
					q.answer("", temporary(err, "connect to SMTP server %s", p.srv.addr()))
				}
				return nil, false
			}
			p.eightBit.Store(c.ext.eightBitMIME)
			p.log.Debug("smtp connected", "conn", c.id, "delivery_id", q.m.ID,
				"pipelining", c.ext.pipelining, "8bitmime", c.ext.eightBitMIME)
		}
		if q.r.eightBit && !c.ext.eightBitMIME {
			r, err := q.m.render(q.buf, p.cfg.Now(), p.cfg.DKIM, false, &p.senders)
			if err != nil {
				if queued {
					c.drop()
				}
				q.answer("", err)
				return nil, false
			}
			q.r = r
		}
		reply, next, err := p.sendOn(c, q, queued)
		if err == nil {
			q.answer(reply, nil)
			return next, next != nil && c.session != nil
		}
		// A server may drop a connection that sat in the pool, or close
		// one after a message; that shows as a failure before anything was
		// accepted. Retry once on a new one.
		var se *SendError
		if reused && attempt == 0 && q.ctx.Err() == nil && errors.As(err, &se) && stale(se) {
			p.log.Debug("smtp connection went stale, reconnecting", "conn", c.id, "delivery_id", q.m.ID, "error", err)
			queued = false
			continue
		}
		q.answer("", err)
		return next, next != nil && c.session != nil
	}
}

// maxPooledBuf is the largest message buffer kept for reuse.
const maxPooledBuf = 1 << 20

func (p *pool) putBuf(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBuf {
		p.bufs.Put(buf)
	}
}

// sendOn sends q's message on c's open session, its envelope first unless
// queued says it is written already, and leaves c either ready for the
// next message or disconnected. With PIPELINING, a send waiting as the
// message's data goes out is taken and its envelope written behind it:
// sendOn returns it as next.
func (p *pool) sendOn(c *conn, q *request, queued bool) (reply string, next *request, err error) {
	w := &watch{conn: c.raw}
	stop := w.guard(q.ctx)
	reply, next, err = p.exchange(c, q.r, queued)
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
		return reply, next, nil
	}
	if interrupted {
		c.drop()
		return "", next, fmt.Errorf("send to %s: %w", p.srv.addr(), context.Cause(q.ctx))
	}
	se := classify(err, c.ext.enhancedCodes)
	switch {
	case se.Code < 400 || se.Code == 421 || c.dataOpen:
		// No reply (the connection broke), the server is closing it, a
		// reply that makes no sense here, or a server waiting for the data
		// of a message it refused: the session's state is unknown.
		c.drop()
	case next != nil:
		// Refused at its final dot, which ended the transaction: the
		// session is clean, and RSET would cancel next's envelope.
	default:
		// The server refused this message; RSET so the session is clean for
		// the next one, whatever step it failed at.
		if rerr := c.session.Reset(); rerr != nil {
			c.drop()
		}
	}
	return "", next, se
}

// exchange is one message's part of c's session, the server having said
// EHLO and whatever TLS and AUTH asked: MAIL FROM, RCPT TO and DATA, the
// message, the final dot. With PIPELINING the three commands go in one
// write (unless queued: written already) and their replies are read
// after it, and a send waiting as the message's data goes out has its
// envelope written in the same write as the data, behind the final dot
// (RFC 2920 lets message content start a group of commands); exchange
// returns it as next. Without PIPELINING, each command waits for its
// reply. It returns the final reply when the server took the message,
// else a *stepError for the first step that failed; the session then
// needs RSET (unless next's envelope follows), or dropping when the
// connection broke. A transaction that succeeded needs no RSET: it ended
// with the final reply.
func (p *pool) exchange(c *conn, r *rendered, queued bool) (string, *request, error) {
	// One deadline for the whole message, as the configuration says.
	if err := c.raw.SetDeadline(time.Now().Add(p.cfg.Timeout)); err != nil {
		return "", nil, &stepError{stepMail, err}
	}
	if !c.ext.pipelining {
		if err := c.envelopeStepByStep(r); err != nil {
			return "", nil, err
		}
	} else {
		if !queued {
			c.out = c.appendEnvelope(c.out[:0], r)
			if err := write(c.session.Text, c.out); err != nil {
				return "", nil, &stepError{stepMail, err}
			}
		}
		if err := c.readEnvelope(); err != nil {
			return "", nil, err
		}
	}
	var next *request
	c.next = c.next[:0]
	if c.ext.pipelining {
		if next = p.waiting(c); next != nil {
			c.next = c.appendEnvelope(c.next, next.r)
		}
	}
	if err := c.writeData(r, c.next); err != nil {
		return "", next, err
	}
	reply, err := c.readFinal()
	return reply, next, err
}

// waiting takes a send that is waiting for a connection, if there is one
// and c may carry another message after the current one.
func (p *pool) waiting(c *conn) *request {
	if c.sent+1 >= p.cfg.MaxPerConn {
		return nil
	}
	select {
	case <-p.done:
		return nil
	default:
	}
	select {
	case q := <-p.reqs:
		if q.ctx.Err() != nil {
			if q.state.CompareAndSwap(requestHanded, requestGivenUp) {
				q.answer("", waitError(q.ctx))
			}
			return nil
		}
		return q
	default:
		return nil
	}
}

func (p *pool) Close() error {
	p.closed.Do(func() {
		close(p.done)
		// Each connection finishes the sends it took, then says QUIT.
		p.serves.Wait()
		// Sends left in a buffered channel (tests make one) end here.
		for {
			select {
			case q := <-p.reqs:
				q.answer("", ErrClosed)
			default:
				return
			}
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
