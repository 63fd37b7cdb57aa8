package mail_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"nurture/internal/mail"
	"nurture/internal/smtptest"
)

// testKey is one 2048-bit key for the whole package: generating it takes
// a noticeable fraction of a second.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

const selector = "nurture2026"

// writePEM writes a PEM block of type typ to a new file and returns its path.
func writePEM(t testing.TB, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadDKIM loads testKey as a PKCS#8 file, as openssl genpkey writes it.
func loadDKIM(t testing.TB) *mail.DKIM {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(testKey())
	if err != nil {
		t.Fatal(err)
	}
	dk, err := mail.LoadDKIM(writePEM(t, "PRIVATE KEY", der), selector)
	if err != nil {
		t.Fatal(err)
	}
	return dk
}

// verifyScript checks the messages in the files argv[4:] with dkimpy,
// looking the key up with a fixed DNS answer: the record argv[3] at
// argv[1]._domainkey.argv[2] and nothing anywhere else. It prints "pass"
// or "fail" for each, on a line of its own, and logs dkimpy's reasons.
const verifyScript = `
import logging, sys, dkim
selector, domain, record = sys.argv[1], sys.argv[2], sys.argv[3]
want = (selector + "._domainkey." + domain).lower()
def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    if name.rstrip(".").lower() == want:
        return record.encode()
    print("no record for " + name, file=sys.stderr)
    return None
logging.basicConfig(stream=sys.stderr, level=logging.DEBUG, format="%(message)s")
for path in sys.argv[4:]:
    print("== " + path, file=sys.stderr)
    with open(path, "rb") as f:
        ok = dkim.verify(f.read(), logger=logging.getLogger("dkim"), dnsfunc=dnsfunc)
    print("pass" if ok else "fail")
`

// dkimpy returns a Python interpreter that has dkimpy (Debian's
// python3-dkim, which scripts/services.sh installs).
var dkimpy = sync.OnceValues(func() (string, error) {
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import dkim").Run() == nil {
			return py, nil
		}
	}
	return "", errors.New("no python3 with the dkim module: run scripts/services.sh, or apt-get install python3-dkim")
})

// verify runs dkimpy over each message (in one process: Python takes a
// while to start) and reports whether each signature holds; why is
// dkimpy's log.
func verify(t *testing.T, dk *mail.DKIM, domain string, msgs ...[]byte) (ok []bool, why string) {
	t.Helper()
	py, err := dkimpy()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-c", verifyScript, dk.Selector(), domain, dk.TXTRecord()}
	dir := t.TempDir()
	for i, m := range msgs {
		path := filepath.Join(dir, fmt.Sprintf("%d.eml", i))
		if err := os.WriteFile(path, m, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, path)
	}
	cmd := exec.Command(py, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("dkimpy: %v\n%s", err, stderr.String())
	}
	for _, out := range strings.Fields(stdout.String()) {
		if out != "pass" && out != "fail" {
			t.Fatalf("dkimpy printed %q\n%s", stdout.String(), stderr.String())
		}
		ok = append(ok, out == "pass")
	}
	if len(ok) != len(msgs) {
		t.Fatalf("dkimpy gave %d results for %d messages: %q", len(ok), len(msgs), stdout.String())
	}
	return ok, stderr.String()
}

// signature returns the tags of the one DKIM-Signature field of data,
// unfolded and with whitespace removed from their values.
func signature(t *testing.T, data []byte) map[string]string {
	t.Helper()
	head, _, ok := bytes.Cut(data, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("no end of header in %q", data)
	}
	unfolded := regexp.MustCompile(`\r\n[ \t]`).ReplaceAllString(string(head)+"\r\n", " ")
	var fields []string
	for line := range strings.SplitSeq(unfolded, "\r\n") {
		if name, value, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, "DKIM-Signature") {
			fields = append(fields, value)
		}
	}
	if len(fields) != 1 {
		t.Fatalf("%d DKIM-Signature fields, want 1", len(fields))
	}
	tags := map[string]string{}
	for tag := range strings.SplitSeq(fields[0], ";") {
		k, v, _ := strings.Cut(tag, "=")
		if k = strings.TrimSpace(k); k != "" {
			tags[k] = strings.Join(strings.Fields(v), "")
		}
	}
	return tags
}

// TestDKIMVerifiedIndependently sends signed messages to a real SMTP
// server and has dkimpy, an independent implementation, verify the exact
// bytes received against the published record; then it shows the
// signature breaks when the body, the subject or the sender is tampered
// with.
func TestDKIMVerifiedIndependently(t *testing.T) {
	dk := loadDKIM(t)
	srv := smtptest.Start(t)
	s := newSender(t, mail.Config{URL: srv.URL(), Conns: 1, DKIM: dk})
	ctx := context.Background()

	long := message("d1", "Ann <ann@example.org>")
	// Long enough to be folded over several lines, with non-ASCII text.
	long.Subject = "Zoë, your cart is waiting: 20% off everything you left behind, until Sunday night only"
	long.HTML = strings.Repeat("<p>Hello <b>Zoë</b>,\tthese  are    the items\t\tyou left.  </p>\n", 60)
	htmlOnly := message("d2", "bob@example.org")
	htmlOnly.Text = ""
	for _, m := range []*mail.Message{long, htmlOnly} {
		if _, err := s.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	srv.WaitFor(t, 2, 5*time.Second)
	got := srv.Messages()
	if got[0].MessageID != "<d1@nurture.example.com>" {
		t.Fatalf("first message received is %s", got[0].MessageID)
	}
	data := got[0].Data

	tags := signature(t, data)
	for k, want := range map[string]string{"v": "1", "a": "rsa-sha256", "c": "relaxed/relaxed", "d": "example.com", "s": selector} {
		if tags[k] != want {
			t.Errorf("%s=%q, want %q", k, tags[k], want)
		}
	}
	h := ":" + strings.ToLower(tags["h"]) + ":"
	for _, want := range []string{"from", "to", "subject", "date", "message-id", "list-unsubscribe",
		"list-unsubscribe-post", "mime-version", "content-type", "content-transfer-encoding",
		"x-nurture-campaign", "x-nurture-delivery"} {
		// Each twice: the second instance makes an added field break it.
		if n := strings.Count(h, ":"+want+":"); n != 2 {
			t.Errorf("h= lists %s %d times, want 2: %s", want, n, tags["h"])
		}
	}

	head, body, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	cases := []struct {
		what string
		data []byte
		pass bool
	}{
		{"as received", data, true},
		{"HTML only, as received", got[1].Data, true},
		{"a word of the body changed", slices.Concat(head, []byte("\r\n\r\n"),
			bytes.Replace(body, []byte("the items"), []byte("the itens"), 1)), false},
		{"the subject changed", slices.Concat(bytes.Replace(head, []byte("20%"), []byte("90%"), 1), []byte("\r\n\r\n"), body), false},
		{"a second From added", slices.Concat([]byte("From: Shop <shop@attacker.example>\r\n"), data), false},
	}
	var msgs [][]byte
	for _, c := range cases {
		if !c.pass && bytes.Equal(c.data, data) {
			t.Fatalf("%s: tampering changed nothing", c.what)
		}
		msgs = append(msgs, c.data)
	}
	results, why := verify(t, dk, "example.com", msgs...)
	for i, c := range cases {
		if results[i] != c.pass {
			t.Errorf("%s: verified %v, want %v", c.what, results[i], c.pass)
		}
	}
	if t.Failed() {
		t.Fatalf("dkimpy:\n%s\nfirst message:\n%s", why, data)
	}

	// A key other than the one published does not verify.
	other, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(other)
	wrong, err := mail.LoadDKIM(writePEM(t, "PRIVATE KEY", der), selector)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := verify(t, wrong, "example.com", data); ok[0] {
		t.Error("the message verifies against another key's record")
	}
}

// TestDKIMOutbox checks that the file outbox stores signed messages, and
// that a PKCS#1 key signs as well as a PKCS#8 one.
func TestDKIMOutbox(t *testing.T) {
	dk, err := mail.LoadDKIM(writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(testKey())), selector)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := newSender(t, mail.Config{OutboxDir: dir, DKIM: dk})
	m := message("d1", "ann@example.org")
	m.From = "Shop <news@Mail.Example.NET>"
	if _, err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "winback-30", "c1-d1.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if d := signature(t, data)["d"]; d != "mail.example.net" {
		t.Errorf("d=%q, want the From domain mail.example.net", d)
	}
	if ok, why := verify(t, dk, "mail.example.net", data); !ok[0] {
		t.Fatalf("outbox message does not verify:\n%s\n%s", why, data)
	}
	// Unsigned without DKIM.
	plain := newSender(t, mail.Config{OutboxDir: dir})
	if _, err := plain.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(filepath.Join(dir, "winback-30", "c1-d1.eml"))
	if bytes.Contains(bytes.ToLower(data), []byte("dkim-signature")) {
		t.Error("a sender without DKIM signed")
	}
}

// TestDKIMHeaderReserved checks that a message cannot bring its own
// DKIM-Signature field.
func TestDKIMHeaderReserved(t *testing.T) {
	s := newSender(t, mail.Config{OutboxDir: t.TempDir(), DKIM: loadDKIM(t)})
	m := message("d1", "ann@example.org")
	m.Headers["DKIM-Signature"] = "v=1; forged"
	_, err := s.Send(context.Background(), m)
	if want := `message <d1@nurture.example.com>: header "DKIM-Signature" cannot be set`; err == nil || err.Error() != want || !mail.IsPermanent(err) {
		t.Errorf("error %v, want permanent %q", err, want)
	}
}

func TestLoadDKIMErrors(t *testing.T) {
	dir := t.TempDir()
	unreadable := filepath.Join(dir, "unreadable.pem")
	if err := os.WriteFile(unreadable, nil, 0o000); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "key.txt")
	if err := os.WriteFile(notPEM, []byte("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecSEC1, _ := x509.MarshalECPrivateKey(ec)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKCS8PrivateKey(ed)
	pubDER, _ := x509.MarshalPKIXPublicKey(&testKey().PublicKey)
	encrypted := filepath.Join(dir, "encrypted.pem")
	enc := "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0123456789ABCDEF0123456789ABCDEF\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"
	if err := os.WriteFile(encrypted, []byte(enc), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope.pem"), "cannot read it: no such file or directory"},
		{"a directory", dir, "cannot read it: is a directory"},
		{"not PEM", notPEM, `no PEM block found; want a PEM RSA private key ("BEGIN RSA PRIVATE KEY" or "BEGIN PRIVATE KEY")`},
		{"public key", writePEM(t, "PUBLIC KEY", pubDER), `PEM block "PUBLIC KEY" is not a private key the signer can use; want a PEM RSA private key ("BEGIN RSA PRIVATE KEY" or "BEGIN PRIVATE KEY")`},
		{"EC key, SEC 1", writePEM(t, "EC PRIVATE KEY", ecSEC1), `PEM block "EC PRIVATE KEY" is not a private key the signer can use; want a PEM RSA private key ("BEGIN RSA PRIVATE KEY" or "BEGIN PRIVATE KEY")`},
		{"EC key, PKCS#8", writePEM(t, "PRIVATE KEY", ecDER), "an ECDSA key, not an RSA key; DKIM has no ECDSA algorithm"},
		{"Ed25519 key", writePEM(t, "PRIVATE KEY", edDER), "an Ed25519 key, not an RSA key; many receivers cannot verify Ed25519 signatures yet"},
		{"garbage in PEM", writePEM(t, "RSA PRIVATE KEY", []byte("garbage")), `PEM block "RSA PRIVATE KEY" holds no PKCS#1 or PKCS#8 private key`},
		{"encrypted", encrypted, "the key is encrypted; store it without a passphrase (openssl pkey -in KEY -out KEY.plain)"},
		{"too short", "testdata/dkim/rsa-512.pem", "RSA key of 512 bits is too short; DKIM needs at least 1024 (2048 recommended)"},
	}
	if os.Getuid() != 0 { // root reads any file
		tests = append(tests, struct{ name, path, want string }{"unreadable", unreadable, "cannot read it: permission denied"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mail.LoadDKIMKey(tt.path)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v\nwant       %s", err, tt.want)
			}
		})
	}

	if _, err := mail.LoadDKIM(filepath.Join(dir, "nope.pem"), selector); err == nil ||
		err.Error() != "DKIM key "+filepath.Join(dir, "nope.pem")+": cannot read it: no such file or directory" {
		t.Errorf("LoadDKIM: %v", err)
	}
}

func TestCheckDKIMSelector(t *testing.T) {
	for _, ok := range []string{"s1", "mail2026", "eu.news", "a-b", strings.Repeat("x", 63)} {
		if err := mail.CheckDKIMSelector(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	const want = "not a DKIM selector; want DNS labels of letters, digits and hyphens, such as mail2026"
	for _, bad := range []string{"a_b", "-a", "a-", "a..b", ".a", "a b", "s1._domainkey", "ü", strings.Repeat("x", 64)} {
		if err := mail.CheckDKIMSelector(bad); err == nil || err.Error() != want {
			t.Errorf("%q: %v, want %q", bad, err, want)
		}
	}
	if err := mail.CheckDKIMSelector(""); err == nil || err.Error() != "empty; want DNS labels of letters, digits and hyphens, such as mail2026" {
		t.Errorf("empty: %v", err)
	}
}

func TestDKIMTXTRecord(t *testing.T) {
	dk := loadDKIM(t)
	rec := dk.TXTRecord()
	p, ok := strings.CutPrefix(rec, "v=DKIM1; k=rsa; p=")
	if !ok {
		t.Fatalf("record %q", rec)
	}
	der, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	if !testKey().PublicKey.Equal(pub) {
		t.Error("the record publishes another key")
	}
	if dk.Bits() != 2048 {
		t.Errorf("Bits = %d", dk.Bits())
	}
}

// benchMessage is a campaign email of the usual size: 4.7 KB of HTML and
// a short text part.
func benchMessage(b *testing.B) *mail.Message {
	m := message("bench", "ann@example.org")
	line := `<tr><td style="padding:8px"><a href="https://shop.example.com/p/42">Item</a> — 19.90 €</td></tr>` + "\n"
	m.HTML = "<html><body><table>\n" + strings.Repeat(line, 4700/len(line)) + "</table></body></html>\n"
	if n := len(m.HTML); n < 4600 || n > 4800 {
		b.Fatalf("HTML of %d bytes", n)
	}
	return m
}

// BenchmarkDKIM measures what signing adds to each message: build/ builds
// and writes it as a transport does, smtp/ sends it to an in-process SMTP
// server over one connection.
func BenchmarkDKIM(b *testing.B) {
	dk := loadDKIM(b)
	m := benchMessage(b)
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	for _, mode := range []struct {
		name string
		dk   *mail.DKIM
	}{{"unsigned", nil}, {"signed", dk}} {
		b.Run("build/"+mode.name, func(b *testing.B) {
			var size int
			for b.Loop() {
				var w bytes.Buffer
				if err := mail.WriteSigned(&w, m, now, mode.dk); err != nil {
					b.Fatal(err)
				}
				size = w.Len()
			}
			b.ReportMetric(float64(size), "bytes/msg")
		})
	}
	for _, mode := range []struct {
		name string
		dk   *mail.DKIM
	}{{"unsigned", nil}, {"signed", dk}} {
		b.Run("smtp/"+mode.name, func(b *testing.B) {
			srv := smtptest.Start(b, smtptest.Discard())
			s := newSender(b, mail.Config{URL: srv.URL(), Conns: 1, DKIM: mode.dk})
			for b.Loop() {
				if _, err := s.Send(context.Background(), m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestDKIMConcurrentSends signs from many goroutines over a pool, as the
// worker does, and checks every message received verifies (with
// go-msgauth here: dkimpy checked the format above).
func TestDKIMConcurrentSends(t *testing.T) {
	dk := loadDKIM(t)
	srv := smtptest.Start(t)
	s := newSender(t, mail.Config{URL: srv.URL(), Conns: 3, DKIM: dk})
	const n = 40
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				m := message(fmt.Sprintf("d%d", i), fmt.Sprintf("c%d@example.org", i))
				if i%2 == 0 {
					m.Text = ""
				}
				if _, err := s.Send(context.Background(), m); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	srv.WaitFor(t, n, 10*time.Second)
	lookup := func(name string) ([]string, error) {
		if name != selector+"._domainkey.example.com" {
			return nil, fmt.Errorf("no record at %s", name)
		}
		return []string{dk.TXTRecord()}, nil
	}
	for _, r := range srv.Messages() {
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(r.Data), &dkim.VerifyOptions{LookupTXT: lookup})
		if err != nil || len(vs) != 1 || vs[0].Err != nil {
			t.Fatalf("message %s: %v %+v\n%s", r.MessageID, err, vs, r.Data)
		}
	}
}
