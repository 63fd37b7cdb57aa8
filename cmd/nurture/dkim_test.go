package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"nurture/internal/smtptest"
	"nurture/internal/store"
)

// dkimKey writes a new RSA key to a file and returns the file and the TXT
// record that publishes its public key.
func dkimKey(t *testing.T) (path, record string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return path, "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(pub)
}

// checkSigned verifies data's one DKIM signature against record published
// at name only. (internal/mail has dkimpy verify it independently; here it
// is the wiring that is checked.)
func checkSigned(t *testing.T, data []byte, name, record, domain string) {
	t.Helper()
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(data), &dkim.VerifyOptions{
		LookupTXT: func(n string) ([]string, error) {
			if n != name {
				t.Errorf("looked up %s, want %s", n, name)
				return nil, nil
			}
			return []string{record}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != domain {
		for _, v := range vs {
			t.Errorf("signature d=%s: %v", v.Domain, v.Err)
		}
		t.Fatalf("%d signatures, want one valid for %s\n%s", len(vs), domain, data)
	}
}

func TestSendTestSignsWithDKIM(t *testing.T) {
	env := fixtureEnv(t)
	importFixture(t, env)
	smtp := smtptest.Start(t)
	key, record := dkimKey(t)
	env["SMTP_URL"], env["DKIM_KEY_FILE"], env["DKIM_SELECTOR"] = smtp.URL(), key, "qa"
	if _, stderr, code := cli(t, env, "send-test", "welcome", "--customer", "c1", "--to", "qa@example.com"); code != 0 {
		t.Fatalf("send-test: status %d: %s", code, stderr)
	}
	if smtp.Count() != 1 {
		t.Fatalf("SMTP server got %d messages", smtp.Count())
	}
	checkSigned(t, smtp.Messages()[0].Data, "qa._domainkey.example.com", record, "example.com")

	// The flags override the variables.
	other, otherRecord := dkimKey(t)
	if _, stderr, code := cli(t, env, "send-test", "welcome", "--customer", "c1", "--to", "qa@example.com",
		"--dkim-key-file", other, "--dkim-selector", "s2"); code != 0 {
		t.Fatalf("send-test: status %d: %s", code, stderr)
	}
	smtp.WaitFor(t, 2, 5*time.Second)
	checkSigned(t, smtp.Messages()[1].Data, "s2._domainkey.example.com", otherRecord, "example.com")
}

// TestWorkerSignsWithDKIM runs a worker process with DKIM settings and
// checks that every email it sends is signed for its From domain.
func TestWorkerSignsWithDKIM(t *testing.T) {
	env := fixtureEnv(t)
	env["CAMPAIGNS_DIR"], env["TEMPLATES_DIR"] = sendNowCampaigns(t), "../../templates"
	at := time.Now().UTC().Truncate(time.Second)
	importSample(t, env, 40, 7, at)
	if _, stderr, code := cli(t, env, "run-once", "--at", at.Format(time.RFC3339)); code != 0 {
		t.Fatal(stderr)
	}
	st := openStore(t, env)
	counts, err := st.DeliveryCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	queued := 0
	for _, c := range counts {
		if c.Status == store.StatusQueued {
			queued += c.N
		}
	}
	if queued == 0 {
		t.Fatalf("nothing queued: %+v", counts)
	}

	sink := smtptest.Start(t)
	key, record := dkimKey(t)
	env["SMTP_URL"], env["DKIM_KEY_FILE"], env["DKIM_SELECTOR"] = sink.URL(), key, "news"
	p := startProc(t, env, "serve", "--role", "worker")
	p.waitLog(30*time.Second, "emails are DKIM-signed", "selector=news", "key_bits=1024")
	sink.WaitFor(t, queued, 60*time.Second)
	for _, m := range sink.Messages() {
		// The shipped campaigns send from the default sender's domain.
		_, domain, _ := strings.Cut(m.From, "@")
		checkSigned(t, m.Data, "news._domainkey."+domain, record, domain)
	}
	t.Logf("%d emails signed and verified", sink.Count())
}
