// Package smtptest runs an in-process SMTP server on 127.0.0.1 for tests and
// benchmarks: it records what it receives, counts connections (to prove
// pooling), and answers with injected failures on demand.
package smtptest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Received is one message the server accepted.
type Received struct {
	From string   // envelope sender (MAIL FROM)
	To   []string // envelope recipients (RCPT TO)
	Data []byte   // the message as transmitted
	// Parsed from Data, best effort.
	MessageID string // with angle brackets
	Subject   string // decoded
	Text      string // the decoded text/plain part
	HTML      string // the decoded text/html part
	// At is when the server accepted the message (the end of DATA).
	At time.Time
}

// Attempt is one message the server answered at the end of DATA, with
// its reply code: 250 when accepted, or an injected failure's code.
type Attempt struct {
	At   time.Time
	To   []string
	Code int
}

// Option configures a Server.
type Option func(*Server)

// Discard makes the server count messages without keeping them, for
// benchmarks: Messages returns nothing, Count and MessageIDs still count.
func Discard() Option { return func(s *Server) { s.discard = true } }

// Latency makes the server wait d before answering each DATA, as a remote
// server would; tests use it to have sends in flight at a known moment.
func Latency(d time.Duration) Option { return func(s *Server) { s.latency = d } }

// Auth requires AUTH PLAIN with these credentials (offered on plain
// connections too, as test servers do).
func Auth(user, pass string) Option {
	return func(s *Server) { s.user, s.pass = user, pass }
}

// StartTLS offers STARTTLS with a self-signed certificate; URL then asks
// for tls=starttls and insecure_skip_verify=true.
func StartTLS() Option { return func(s *Server) { s.tlsMode = "starttls" } }

// ImplicitTLS serves TLS from the first byte, as on port 465; URL then
// uses smtps:// with insecure_skip_verify=true.
func ImplicitTLS() Option { return func(s *Server) { s.tlsMode = "tls" } }

// Hide leaves these extensions, such as PIPELINING or 8BITMIME, out of
// the server's EHLO reply, as an older server would; it still takes their
// commands. It applies to plain and implicit TLS connections, not after
// STARTTLS.
func Hide(extensions ...string) Option {
	return func(s *Server) { s.hide = append(s.hide, extensions...) }
}

// Server is an in-process SMTP server.
type Server struct {
	discard    bool
	latency    time.Duration
	user, pass string
	tlsMode    string
	hide       []string

	srv  *smtp.Server
	ln   net.Listener
	addr string
	wg   sync.WaitGroup

	mu       sync.Mutex
	msgs     []Received
	attempts []Attempt
	count    int
	ids      map[string]int // messages accepted per Message-ID
	conns    map[net.Conn]struct{}
	nconns   int
	data     []fault // answers for the next DATA commands
	rcpt     []fault // answers for the next RCPT commands
	mail     []fault // answers for the next MAIL commands
	rejects  map[string]fault
	changed  chan struct{} // closed and replaced when count changes
	hold     chan struct{} // set by Hold: DATA replies wait until it is closed
	held     int           // DATA replies waiting on hold
}

type fault struct {
	code     int
	enhanced smtp.EnhancedCode
	text     string
}

func (f fault) err() *smtp.SMTPError {
	return &smtp.SMTPError{Code: f.code, EnhancedCode: f.enhanced, Message: f.text}
}

// Start starts a server and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := New(opts...)
	if err != nil {
		t.Fatalf("smtptest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// New starts a server on 127.0.0.1 on a free port. Call Close to stop it.
func New(opts ...Option) (*Server, error) {
	s := &Server{conns: map[net.Conn]struct{}{}, rejects: map[string]fault{}, ids: map[string]int{}, changed: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	srv := smtp.NewServer(backend{s})
	srv.Domain = "smtptest.local"
	srv.AllowInsecureAuth = true
	srv.MaxMessageBytes = 10 << 20
	srv.MaxRecipients = 50
	srv.ErrorLog = log.New(io.Discard, "", 0)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	// Count and track TCP connections, under any TLS.
	var ln net.Listener = &countingListener{Listener: tcp, s: s}
	if s.tlsMode != "" {
		cfg, err := selfSigned()
		if err != nil {
			ln.Close()
			return nil, err
		}
		if s.tlsMode == "tls" {
			ln = tls.NewListener(ln, cfg)
		} else {
			srv.TLSConfig = cfg
		}
	}
	if len(s.hide) > 0 {
		ln = &hidingListener{Listener: ln, hide: s.hide}
	}
	s.srv, s.ln, s.addr = srv, ln, tcp.Addr().String()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = srv.Serve(s.ln)
	}()
	return s, nil
}

// Close stops the server and closes its connections.
func (s *Server) Close() {
	_ = s.srv.Close()
	// go-smtp only closes listeners that Serve has registered, which it may
	// not have done yet.
	_ = s.ln.Close()
	s.wg.Wait()
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// URL is an SMTP_URL for this server, such as smtp://127.0.0.1:PORT?tls=none.
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.addr}
	if s.user != "" {
		u.User = url.UserPassword(s.user, s.pass)
	}
	switch s.tlsMode {
	case "starttls":
		u.RawQuery = "tls=starttls&insecure_skip_verify=true"
	case "tls":
		u.Scheme = "smtps"
		u.RawQuery = "insecure_skip_verify=true"
	default:
		u.RawQuery = "tls=none"
	}
	return u.String()
}

// Messages returns the messages received so far, oldest first.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

// Attempts returns every message answered at the end of DATA, accepted
// or failed, in the order of their times, in Discard mode too.
func (s *Server) Attempts() []Attempt {
	s.mu.Lock()
	out := append([]Attempt(nil), s.attempts...)
	s.mu.Unlock()
	slices.SortStableFunc(out, func(a, b Attempt) int { return a.At.Compare(b.At) })
	return out
}

// Hold makes every DATA reply from now on wait until Release: a test can
// then act while it knows messages are in flight (see Held).
func (s *Server) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold == nil {
		s.hold = make(chan struct{})
	}
}

// Release answers the DATA commands Hold kept waiting, and ends the hold.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
}

// Held returns how many DATA replies the hold keeps waiting.
func (s *Server) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// Count is the number of messages accepted.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// MessageIDs returns how many messages the server accepted with each
// Message-ID (angle brackets included; "" for messages without one), in
// Discard mode too. A count above 1 is a duplicate send.
func (s *Server) MessageIDs() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.ids)
}

// Connections is the number of connections accepted since the start.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nconns
}

// WaitFor waits until the server has accepted at least n messages and
// fails the test after timeout.
func (s *Server) WaitFor(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		count, changed := s.count, s.changed
		s.mu.Unlock()
		if count >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("smtptest: %d messages after %s, want %d", s.Count(), timeout, n)
			return
		}
	}
}

// FailNext makes the next n DATA commands answer code with the enhanced
// status code (such as "4.3.0"; empty for X.0.0) and text, after reading
// the message: 421 or 451 for temporary failures, 550 or 554 for permanent
// ones.
func (s *Server) FailNext(n, code int, enhanced, text string) {
	f := newFault(code, enhanced, text)
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.data = append(s.data, f)
	}
}

// FailNextMail is FailNext for the next n MAIL commands.
func (s *Server) FailNextMail(n, code int, enhanced, text string) {
	f := newFault(code, enhanced, text)
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.mail = append(s.mail, f)
	}
}

// FailNextRcpt is FailNext for the next n RCPT commands.
func (s *Server) FailNextRcpt(n, code int, enhanced, text string) {
	f := newFault(code, enhanced, text)
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.rcpt = append(s.rcpt, f)
	}
}

// Reject makes every RCPT TO addr answer code and text. An enhanced status
// code may lead text: Reject("x@example.com", 550, "5.1.1 mailbox unavailable").
func (s *Server) Reject(addr string, code int, text string) {
	enhanced, rest, ok := strings.Cut(text, " ")
	if !enhancedCode.MatchString(enhanced) || !ok {
		enhanced, rest = "", text
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejects[strings.ToLower(addr)] = newFault(code, enhanced, rest)
}

// DropConnections closes every open connection, as a server restarting or
// timing out idle clients does, without a goodbye.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

var enhancedCode = regexp.MustCompile(`^[245]\.\d{1,3}\.\d{1,3}$`)

func newFault(code int, enhanced, text string) fault {
	f := fault{code: code, enhanced: smtp.EnhancedCodeNotSet, text: text}
	if enhancedCode.MatchString(enhanced) {
		parts := strings.Split(enhanced, ".")
		for i, p := range parts {
			f.enhanced[i], _ = strconv.Atoi(p)
		}
	}
	return f
}

func (s *Server) received(r Received) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count++
	s.ids[r.MessageID]++
	s.attempts = append(s.attempts, Attempt{At: r.At, To: r.To, Code: 250})
	if !s.discard {
		s.msgs = append(s.msgs, r)
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

type countingListener struct {
	net.Listener
	s *Server
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.mu.Lock()
	l.s.nconns++
	l.s.conns[c] = struct{}{}
	l.s.mu.Unlock()
	return &trackedConn{Conn: c, s: l.s}, nil
}

type trackedConn struct {
	net.Conn
	s *Server
}

func (c *trackedConn) Close() error {
	c.s.mu.Lock()
	delete(c.s.conns, c.Conn)
	c.s.mu.Unlock()
	return c.Conn.Close()
}

// hidingListener wraps connections so that their EHLO replies leave out
// the hidden extensions.
type hidingListener struct {
	net.Listener
	hide []string
}

func (l *hidingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &hidingConn{Conn: c, hide: l.hide}, nil
}

type hidingConn struct {
	net.Conn
	hide []string
}

// Write drops the "250-EXTENSION" lines of the hidden extensions; go-smtp
// writes each line of a reply on its own, and an extension is never the
// last line of its EHLO reply.
func (c *hidingConn) Write(p []byte) (int, error) {
	if !bytes.HasPrefix(p, []byte("250-")) {
		return c.Conn.Write(p)
	}
	var out []byte
	for line := range bytes.Lines(p) {
		keyword, _, _ := strings.Cut(strings.TrimSpace(string(line[4:])), " ")
		if bytes.HasPrefix(line, []byte("250-")) && slices.ContainsFunc(c.hide, func(h string) bool {
			return strings.EqualFold(h, keyword)
		}) {
			continue
		}
		out = append(out, line...)
	}
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

type backend struct{ s *Server }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s, authed: b.s.user == ""}, nil
}

type session struct {
	s      *Server
	authed bool
	from   string
	to     []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string {
	if ss.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != ss.s.user || pass != ss.s.pass {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if !ss.authed {
		return smtp.ErrAuthRequired
	}
	s := ss.s
	s.mu.Lock()
	var f *fault
	if len(s.mail) > 0 {
		f = &s.mail[0]
		s.mail = s.mail[1:]
	}
	s.mu.Unlock()
	if f != nil {
		return f.err()
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s := ss.s
	s.mu.Lock()
	f, rejected := s.rejects[strings.ToLower(to)]
	if !rejected && len(s.rcpt) > 0 {
		f, rejected = s.rcpt[0], true
		s.rcpt = s.rcpt[1:]
	}
	s.mu.Unlock()
	if rejected {
		return f.err()
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	s := ss.s
	var (
		data  []byte
		msgID string
		err   error
	)
	if s.discard {
		// Read the header for the Message-ID, and only skip the body.
		br := bufio.NewReader(r)
		h, _ := textproto.NewReader(br).ReadMIMEHeader()
		msgID = h.Get("Message-Id")
		_, err = io.Copy(io.Discard, br)
	} else {
		data, err = io.ReadAll(r)
	}
	if err != nil {
		return err
	}
	if s.latency > 0 {
		time.Sleep(s.latency)
	}
	s.mu.Lock()
	if h := s.hold; h != nil {
		s.held++
		s.mu.Unlock()
		<-h
		s.mu.Lock()
		s.held--
	}
	var f *fault
	if len(s.data) > 0 {
		f = &s.data[0]
		s.data = s.data[1:]
	}
	now := time.Now()
	if f != nil {
		s.attempts = append(s.attempts, Attempt{At: now, To: append([]string(nil), ss.to...), Code: f.code})
	}
	s.mu.Unlock()
	if f != nil {
		return f.err()
	}
	rec := Received{From: ss.from, To: append([]string(nil), ss.to...), Data: data, MessageID: msgID, At: now}
	if !s.discard {
		parse(&rec)
	}
	s.received(rec)
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

// parse fills the decoded fields of r from r.Data.
func parse(r *Received) {
	msg, err := mail.ReadMessage(bytes.NewReader(r.Data))
	if err != nil {
		return
	}
	var dec mime.WordDecoder
	r.MessageID = msg.Header.Get("Message-Id")
	r.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		r.Subject = msg.Header.Get("Subject")
	}
	walk(r, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
}

// walk decodes a body of the given type, descending into multiparts.
func walk(r *Received, contentType, encoding string, body io.Reader) {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		mediaType = "text/plain"
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// NextPart decodes quoted-printable itself.
			p, err := mr.NextPart()
			if err != nil {
				return
			}
			walk(r, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p)
		}
	}
	switch strings.ToLower(encoding) {
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body) // skips line breaks
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return
	}
	switch mediaType {
	case "text/plain":
		r.Text = string(b)
	case "text/html":
		r.HTML = string(b)
	}
}

// selfSigned makes a throwaway certificate for 127.0.0.1.
func selfSigned() (*tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "smtptest"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, nil
}
