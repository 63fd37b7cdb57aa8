package bench

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"nurture/internal/mail"
)

// dkimSends measures the cost of DKIM signing on the send path: the raw
// sends of part c again, signed with a 2048-bit key, against the unsigned
// ones measured just before, each to a fresh smtp-sink.
func (b *bench) dkimSends(ctx context.Context, unsigned float64) error {
	dir, err := os.MkdirTemp("", "nurture-bench-dkim-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	file := filepath.Join(dir, "dkim.pem")
	block := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	mcfg := mail.Config{Conns: b.cfg.SMTPConns}
	if mcfg.DKIM, err = mail.LoadDKIM(file, "bench"); err != nil {
		return err
	}
	signed, err := b.rawSends(ctx, mcfg)
	if err != nil {
		return err
	}
	r := rate(b.rawCount(), signed)
	b.add(result{
		name:     fmt.Sprintf("(c) DKIM: %s raw `mail.Sender` sends to `smtp-sink` signed (RSA-SHA256, 2048-bit key, relaxed/relaxed), %d at a time over %d connections", count(float64(b.rawCount())), b.cfg.Workers, b.cfg.SMTPConns),
		value:    fmt.Sprintf("%s sends/s (%s)", count(r), secs(signed)),
		baseline: fmt.Sprintf("the same raw sends unsigned, just before: %s/s", count(unsigned)),
		ratio:    unsigned / r,
	})
	return nil
}
