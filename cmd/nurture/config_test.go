package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMalformedSettings(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		want   string // stderr
		stdout string
		code   int
		// usage: the flag package prints its own message, then the usage,
		// which want leaves out.
		usage bool
	}{
		{
			name: "concurrency not a number",
			env:  map[string]string{"WORKER_CONCURRENCY": "12x"},
			args: []string{"serve"},
			want: "nurture: WORKER_CONCURRENCY=\"12x\": not a whole number\n",
			code: 2,
		},
		{
			name: "concurrency zero",
			env:  map[string]string{"WORKER_CONCURRENCY": "0"},
			args: []string{"serve"},
			want: "nurture: WORKER_CONCURRENCY=\"0\": must be at least 1\n",
			code: 2,
		},
		{
			name: "concurrency too high",
			env:  map[string]string{"WORKER_CONCURRENCY": "1280000"},
			args: []string{"serve"},
			want: "nurture: WORKER_CONCURRENCY=\"1280000\": must be at most 10000\n",
			code: 2,
		},
		{
			name: "concurrency flag zero",
			args: []string{"serve", "--concurrency", "0"},
			want: "nurture: --concurrency \"0\": must be at least 1\n",
			code: 2,
		},
		{
			name: "smtp conns negative",
			env:  map[string]string{"SMTP_CONNS": "-1"},
			args: []string{"serve"},
			want: "nurture: SMTP_CONNS=\"-1\": must be at least 1\n",
			code: 2,
		},
		{
			name: "smtp conns with a space",
			env:  map[string]string{"SMTP_CONNS": " 8"},
			args: []string{"serve"},
			want: "nurture: SMTP_CONNS=\" 8\": not a whole number\n",
			code: 2,
		},
		{
			name: "smtp conns in the demo",
			env:  map[string]string{"SMTP_CONNS": "four"},
			args: []string{"demo"},
			want: "nurture: SMTP_CONNS=\"four\": not a whole number\n",
			code: 2,
		},
		{
			name: "no day to replay in the demo",
			args: []string{"demo", "--days", "0"},
			want: "nurture demo: --days 0: must be at least 1\n",
			code: 2,
		},
		{
			name: "database URL with a bad port hides the password",
			env:  map[string]string{"DATABASE_URL": "postgres://ann:secret@db:54x/nurture"},
			args: []string{"migrate"},
			want: "nurture: DATABASE_URL=\"postgres://ann:xxxxx@db:54x/nurture\": invalid port\n",
			code: 2,
		},
		{
			name: "database URL of another database",
			env:  map[string]string{"DATABASE_URL": "mysql://db/nurture"},
			args: []string{"migrate"},
			want: "nurture: DATABASE_URL=\"mysql://db/nurture\": scheme \"mysql\", want postgres://[user[:password]@]host[:port]/database\n",
			code: 2,
		},
		{
			name: "database URL flag",
			args: []string{"migrate", "--database-url", "postgres://db/nurture?sslmode=often"},
			want: "nurture: --database-url \"postgres://db/nurture?sslmode=often\": failed to configure TLS (sslmode is invalid)\n",
			code: 2,
		},
		{
			name: "redis URL scheme",
			env:  map[string]string{"REDIS_URL": "http://127.0.0.1:6379"},
			args: []string{"run-once"},
			want: "nurture: REDIS_URL=\"http://127.0.0.1:6379\": redis: invalid URL scheme: http\n",
			code: 2,
		},
		{
			name: "redis URL port hides the password",
			env:  map[string]string{"REDIS_URL": "redis://:secret@127.0.0.1:63x9/0"},
			args: []string{"run-once"},
			want: "nurture: REDIS_URL=\"redis://:xxxxx@127.0.0.1:63x9/0\": invalid port \":63x9\" after host\n",
			code: 2,
		},
		{
			name: "SMTP URL",
			env:  map[string]string{"SMTP_URL": "smtp://mail.example.com?tls=maybe"},
			args: []string{"serve"},
			want: "nurture: SMTP_URL=\"smtp://mail.example.com?tls=maybe\": invalid SMTP URL: tls=\"maybe\", want none, starttls or tls\n",
			code: 2,
		},
		{
			name: "log level",
			env:  map[string]string{"LOG_LEVEL": "loud"},
			args: []string{"migrate"},
			want: "nurture: LOG_LEVEL=\"loud\": want debug, info, warn or error\n",
			code: 2,
		},
		{
			name: "log level flag",
			args: []string{"migrate", "--log-level", "loud"},
			want: "nurture: --log-level \"loud\": want debug, info, warn or error\n",
			code: 2,
		},
		{
			name: "roles",
			env:  map[string]string{"ROLES": "scheduler,mailer"},
			args: []string{"serve"},
			want: "nurture: ROLES=\"scheduler,mailer\": unknown role \"mailer\" (want scheduler, worker, http)\n",
			code: 2,
		},
		{
			name: "no role",
			env:  map[string]string{"ROLES": " , "},
			args: []string{"serve"},
			want: "nurture: ROLES=\" , \": no role given (want scheduler, worker, http)\n",
			code: 2,
		},
		{
			name: "mail from",
			env:  map[string]string{"MAIL_FROM": "Shop"},
			args: []string{"serve"},
			want: "nurture: MAIL_FROM=\"Shop\": not an email address such as \"Shop <hello@example.com>\"\n",
			code: 2,
		},
		{
			name: "HTTP address",
			env:  map[string]string{"HTTP_ADDR": "8080"},
			args: []string{"serve"},
			want: "nurture: HTTP_ADDR=\"8080\": want host:port or :port, such as :8080\n",
			code: 2,
		},
		{
			name: "HTTP port out of range",
			env:  map[string]string{"HTTP_ADDR": "127.0.0.1:99999"},
			args: []string{"serve"},
			want: "nurture: HTTP_ADDR=\"127.0.0.1:99999\": port \"99999\" is not a number from 0 to 65535\n",
			code: 2,
		},
		{
			name: "HTTP access settings, with the others",
			env:  map[string]string{"API_MAX_BODY": "lots", "MONITORING_READONLY": "maybe", "WORKER_CONCURRENCY": "12x"},
			args: []string{"serve"},
			want: "nurture: WORKER_CONCURRENCY=\"12x\": not a whole number\n" +
				"nurture: MONITORING_READONLY=\"maybe\": want true or false\n" +
				"nurture: API_MAX_BODY=\"lots\": invalid size \"lots\": want bytes, or a whole number with a unit (B, kB, MB, GB, KiB, MiB, GiB) such as 10MiB\n",
			code: 2,
		},
		{
			name: "weak API token",
			env:  map[string]string{"API_TOKENS": "0123456789abcdef0123, short"},
			args: []string{"serve"},
			want: "nurture: API_TOKENS=\"...\": each token needs at least 16 characters\n",
			code: 2,
		},
		{
			name: "weak webhook token",
			env:  map[string]string{"WEBHOOK_TOKENS": "short,0123456789abcdef0123"},
			args: []string{"serve"},
			want: "nurture: WEBHOOK_TOKENS=\"...\": each token needs at least 16 characters\n",
			code: 2,
		},
		{
			name: "SNS_VERIFY",
			env:  map[string]string{"SNS_VERIFY": "yes please"},
			args: []string{"serve"},
			want: "nurture: SNS_VERIFY=\"yes please\": want true or false\n",
			code: 2,
		},
		{
			name: "unsubscribe mailbox",
			env:  map[string]string{"UNSUBSCRIBE_MAILTO": "Unsubscribe <u@mail.example.com>"},
			args: []string{"serve"},
			want: "nurture: UNSUBSCRIBE_MAILTO=\"Unsubscribe <u@mail.example.com>\": unsubscribe mailbox \"Unsubscribe <u@mail.example.com>\": want a bare email address such as unsubscribe@mail.example.com\n",
			code: 2,
		},
		{
			name: "unsubscribe mailbox without PUBLIC_URL",
			env:  map[string]string{"UNSUBSCRIBE_MAILTO": "u@mail.example.com"},
			args: []string{"serve"},
			want: "nurture: UNSUBSCRIBE_MAILTO is set without PUBLIC_URL: the mailto address is offered beside the one-click link; set PUBLIC_URL and SECRET\n",
			code: 1,
		},
		{
			name: "unsubscribe TTL",
			env:  map[string]string{"UNSUBSCRIBE_TTL": "forever"},
			args: []string{"serve"},
			want: "nurture: UNSUBSCRIBE_TTL=\"forever\": want a positive duration such as 60d or 720h\n",
			code: 2,
		},
		{
			name: "unsubscribe URL",
			env:  map[string]string{"UNSUBSCRIBE_URL": "mail.example.com"},
			args: []string{"serve"},
			want: "nurture: UNSUBSCRIBE_URL=\"mail.example.com\": want an absolute http(s) URL such as https://mail.example.com\n",
			code: 2,
		},
		{
			name: "every problem at once, flags first",
			env:  map[string]string{"WORKER_CONCURRENCY": "12x", "LOG_LEVEL": "loud"},
			args: []string{"serve", "--smtp-conns", "0"},
			want: "nurture: --smtp-conns \"0\": must be at least 1\n" +
				"nurture: LOG_LEVEL=\"loud\": want debug, info, warn or error\n" +
				"nurture: WORKER_CONCURRENCY=\"12x\": not a whole number\n",
			code: 2,
		},
		{
			name: "a flag given overrides its malformed variable",
			env:  map[string]string{"WORKER_CONCURRENCY": "12x", "SMTP_CONNS": "0"},
			args: []string{"serve", "--concurrency", "16"},
			want: "nurture: SMTP_CONNS=\"0\": must be at least 1\n",
			code: 2,
		},
		{
			name: "a command reports only the settings it reads",
			env: map[string]string{"DATABASE_URL": "mysql://db/nurture", "REDIS_URL": "http://127.0.0.1:6379",
				"LOG_LEVEL": "loud", "CAMPAIGNS_DIR": "../../campaigns", "TEMPLATES_DIR": "../../templates"},
			args:   []string{"lint"},
			stdout: "ok: 7 stages, 10 campaigns, 13 templates\n",
			code:   0,
		},
		{
			name:  "a flag of the wrong type is the flag package's to report",
			args:  []string{"serve", "--concurrency", "12x"},
			want:  "invalid value \"12x\" for flag -concurrency: parse error\n",
			code:  2,
			usage: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := cli(t, tt.env, tt.args...)
			if code != tt.code {
				t.Errorf("status %d, want %d", code, tt.code)
			}
			if tt.usage && strings.HasPrefix(stderr, tt.want+"Usage: nurture ") {
				stderr = tt.want
			}
			if stderr != tt.want {
				t.Errorf("stderr:\n%s\nwant:\n%s", stderr, tt.want)
			}
			if stdout != tt.stdout {
				t.Errorf("stdout: %q, want %q", stdout, tt.stdout)
			}
		})
	}
}

// TestDKIMSettings checks that DKIM_KEY_FILE and DKIM_SELECTOR are parsed
// strictly: a bad key or selector, or one setting without the other, stops
// the command with status 2 and a message naming the variable, before it
// connects to anything.
func TestDKIMSettings(t *testing.T) {
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "dkim.pem")
	if err := os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecFile := filepath.Join(dir, "ec.pem")
	if err := os.WriteFile(ecFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	short := "../../internal/mail/testdata/dkim/rsa-512.pem"

	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{
			name: "missing key file",
			env:  map[string]string{"DKIM_KEY_FILE": missing, "DKIM_SELECTOR": "mail2026"},
			args: []string{"serve"},
			want: "nurture: DKIM_KEY_FILE=\"" + missing + "\": cannot read it: no such file or directory\n",
		},
		{
			name: "not an RSA key",
			env:  map[string]string{"DKIM_KEY_FILE": ecFile, "DKIM_SELECTOR": "mail2026"},
			args: []string{"send-test"},
			want: "nurture: DKIM_KEY_FILE=\"" + ecFile + "\": an ECDSA key, not an RSA key; DKIM has no ECDSA algorithm\n",
		},
		{
			name: "key too short",
			env:  map[string]string{"DKIM_KEY_FILE": short, "DKIM_SELECTOR": "mail2026"},
			args: []string{"demo"},
			want: "nurture: DKIM_KEY_FILE=\"" + short + "\": RSA key of 512 bits is too short; DKIM needs at least 1024 (2048 recommended)\n",
		},
		{
			name: "key file flag",
			args: []string{"serve", "--dkim-key-file", "/", "--dkim-selector", "mail2026"},
			want: "nurture: --dkim-key-file \"/\": cannot read it: is a directory\n",
		},
		{
			name: "selector",
			env:  map[string]string{"DKIM_KEY_FILE": good, "DKIM_SELECTOR": "mail_2026"},
			args: []string{"serve"},
			want: "nurture: DKIM_SELECTOR=\"mail_2026\": not a DKIM selector; want DNS labels of letters, digits and hyphens, such as mail2026\n",
		},
		{
			name: "key without selector",
			env:  map[string]string{"DKIM_KEY_FILE": good},
			args: []string{"serve"},
			want: "nurture: DKIM_KEY_FILE (--dkim-key-file) is set but DKIM_SELECTOR (--dkim-selector) is not; set both to sign emails with DKIM, or neither\n",
		},
		{
			name: "selector without key",
			env:  map[string]string{"DKIM_SELECTOR": "mail2026"},
			args: []string{"send-test", "welcome", "--customer", "c1", "--to", "qa@example.com"},
			want: "nurture: DKIM_SELECTOR (--dkim-selector) is set but DKIM_KEY_FILE (--dkim-key-file) is not; set both to sign emails with DKIM, or neither\n",
		},
		{
			name: "with the other malformed settings",
			env:  map[string]string{"DKIM_KEY_FILE": missing, "DKIM_SELECTOR": "-x", "SMTP_CONNS": "0"},
			args: []string{"serve"},
			want: "nurture: SMTP_CONNS=\"0\": must be at least 1\n" +
				"nurture: DKIM_KEY_FILE=\"" + missing + "\": cannot read it: no such file or directory\n" +
				"nurture: DKIM_SELECTOR=\"-x\": not a DKIM selector; want DNS labels of letters, digits and hyphens, such as mail2026\n",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := cli(t, tt.env, tt.args...)
			if code != 2 || stderr != tt.want || stdout != "" {
				t.Errorf("status %d, stdout %q, stderr:\n%s\nwant status 2 and:\n%s", code, stdout, stderr, tt.want)
			}
		})
	}
}
