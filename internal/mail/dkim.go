package mail

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// MinDKIMKeyBits is the shortest RSA key LoadDKIM accepts: RFC 8301 has
// verifiers refuse shorter ones.
const MinDKIMKeyBits = 1024

// DKIM signs messages (RFC 6376): RSA-SHA256, relaxed/relaxed
// canonicalization, d= the domain of the message's From address, s= the
// selector. The public key must be published as a TXT record at
// SELECTOR._domainkey.DOMAIN for every domain nurture sends from (see
// TXTRecord). A DKIM is safe for concurrent use.
type DKIM struct {
	selector string
	key      *rsa.PrivateKey
}

// LoadDKIM reads the PEM RSA private key in keyFile (PKCS#1 "RSA PRIVATE
// KEY" or PKCS#8 "PRIVATE KEY") and returns a DKIM that signs with it under
// selector. See LoadDKIMKey and CheckDKIMSelector for its errors.
func LoadDKIM(keyFile, selector string) (*DKIM, error) {
	if err := CheckDKIMSelector(selector); err != nil {
		return nil, fmt.Errorf("DKIM selector %q: %w", selector, err)
	}
	key, err := LoadDKIMKey(keyFile)
	if err != nil {
		return nil, fmt.Errorf("DKIM key %s: %w", keyFile, err)
	}
	return &DKIM{selector: selector, key: key}, nil
}

// LoadDKIMKey reads and checks the DKIM private key in path. Its errors say
// what is wrong without repeating the path: the file cannot be read, holds
// no PEM block, holds a key that is encrypted, not RSA or shorter than
// MinDKIMKeyBits.
func LoadDKIMKey(path string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("cannot read it: %w", err)
	}
	return parseDKIMKey(data)
}

const wantPEM = `want a PEM RSA private key ("BEGIN RSA PRIVATE KEY" or "BEGIN PRIVATE KEY")`

func parseDKIMKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found; " + wantPEM)
	}
	if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "" {
		return nil, errors.New("the key is encrypted; store it without a passphrase (openssl pkey -in KEY -out KEY.plain)")
	}
	if block.Type != "RSA PRIVATE KEY" && block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("PEM block %q is not a private key the signer can use; %s", block.Type, wantPEM)
	}
	// Either encoding under either label: some tools label a PKCS#1 key
	// "PRIVATE KEY".
	var key any
	key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		if key, err = x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
			return nil, fmt.Errorf("PEM block %q holds no PKCS#1 or PKCS#8 private key", block.Type)
		}
	}
	var rk *rsa.PrivateKey
	switch k := key.(type) {
	case *rsa.PrivateKey:
		rk = k
	case ed25519.PrivateKey:
		return nil, errors.New("an Ed25519 key, not an RSA key; many receivers cannot verify Ed25519 signatures yet")
	case *ecdsa.PrivateKey:
		return nil, errors.New("an ECDSA key, not an RSA key; DKIM has no ECDSA algorithm")
	default:
		return nil, fmt.Errorf("a %T, not an RSA key", key)
	}
	if bits := rk.N.BitLen(); bits < MinDKIMKeyBits {
		return nil, fmt.Errorf("RSA key of %d bits is too short; DKIM needs at least %d (2048 recommended)", bits, MinDKIMKeyBits)
	}
	return rk, nil
}

// CheckDKIMSelector reports what is wrong with a DKIM selector: it must be
// one or more DNS labels (letters, digits and inner hyphens, 63 characters
// at most each) separated by dots, such as "mail2026" or "eu.news".
func CheckDKIMSelector(s string) error {
	const want = "want DNS labels of letters, digits and hyphens, such as mail2026"
	if s == "" {
		return errors.New("empty; " + want)
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("not a DKIM selector; " + want)
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return errors.New("not a DKIM selector; " + want)
			}
		}
	}
	return nil
}

// Selector returns the selector (the s= tag).
func (d *DKIM) Selector() string { return d.selector }

// Bits returns the length of the key's modulus.
func (d *DKIM) Bits() int { return d.key.N.BitLen() }

// TXTRecord returns the value of the DNS TXT record that publishes the
// public key, at SELECTOR._domainkey.DOMAIN: "v=DKIM1; k=rsa; p=...".
func (d *DKIM) TXTRecord() string {
	der, err := x509.MarshalPKIXPublicKey(&d.key.PublicKey)
	if err != nil {
		// Not reached: any RSA public key marshals.
		panic(fmt.Sprintf("marshal DKIM public key: %v", err))
	}
	return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
}

// dkimHeaders are the fields every signature covers, whether the message
// has them or not: listing a field it lacks makes the signature fail if
// one is added in transit. The message's extra headers (Message.Headers)
// are covered too.
var dkimHeaders = []string{
	"From", "To", "Subject", "Date", "Message-ID",
	"List-Unsubscribe", "List-Unsubscribe-Post",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding",
	"Reply-To", "Cc",
}

// signedHeaders returns the h= list for m: dkimHeaders, then m's extra
// header names in a fixed order, each listed twice ("oversigned"), so that
// a second instance of any of them added in transit breaks the signature
// rather than being shown unsigned by a mail client.
func signedHeaders(m *Message) []string {
	keys := slices.Clone(dkimHeaders)
	extra := make([]string, 0, len(m.Headers))
	for k := range m.Headers {
		extra = append(extra, k)
	}
	slices.Sort(extra)
	for _, k := range extra {
		if !slices.ContainsFunc(keys, func(h string) bool { return strings.EqualFold(h, k) }) {
			keys = append(keys, k)
		}
	}
	return append(keys, keys...)
}

// sign returns the DKIM-Signature field, "DKIM-Signature: ...\r\n" folded,
// for msg (header and body, lines ending in CRLF), to be written before
// it. Its errors are permanent.
func (d *DKIM) sign(msg []byte, domain string, headers []string) (string, error) {
	s, err := dkim.NewSigner(&dkim.SignOptions{
		Domain:                 strings.ToLower(domain),
		Selector:               d.selector,
		Signer:                 d.key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             headers,
	})
	if err != nil {
		return "", fmt.Errorf("DKIM: %w", err)
	}
	_, err = s.Write(msg)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("DKIM sign: %w", err)
	}
	return s.Signature(), nil
}
