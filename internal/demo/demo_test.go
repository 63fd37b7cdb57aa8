package demo_test

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nurture/internal/demo"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

func TestRunRefusesRealDatabases(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, databaseURL, redisURL, want string
	}{
		{"database", "postgres://root@127.0.0.1:5432/nurture?sslmode=disable", demo.DefaultRedisURL,
			`--database-url: the demo empties its database; "nurture" must have "demo" in its name`},
		{"redis DB 0", demo.DefaultDatabaseURL, "redis://127.0.0.1:6379/0",
			`--redis-url redis://127.0.0.1:6379/0: the demo empties its Redis DB; use a DB other than 0, such as redis://127.0.0.1:6379/15`},
		{"redis without DB", demo.DefaultDatabaseURL, "redis://127.0.0.1:6379",
			`--redis-url redis://127.0.0.1:6379: the demo empties its Redis DB; use a DB other than 0, such as redis://127.0.0.1:6379/15`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := demo.DefaultConfig()
			cfg.DatabaseURL, cfg.RedisURL = tc.databaseURL, tc.redisURL
			var stdout, stderr bytes.Buffer
			err := demo.Run(context.Background(), cfg, &stdout, &stderr)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Run error:\n got %v\nwant %s", err, tc.want)
			}
			if stdout.Len()+stderr.Len() != 0 {
				t.Errorf("Run did something before refusing:\n%s%s", &stdout, &stderr)
			}
		})
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Run creates and migrates its database; a name with "demo" in it.
	base := testenv.DatabaseBaseURL()
	name := fmt.Sprintf("nurture_test_demo_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		if err := store.DropDatabase(context.Background(), base, name); err != nil {
			t.Error(err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	now := time.Date(2026, 6, 1, 9, 0, 42, 0, time.UTC)
	cfg := demo.DefaultConfig()
	cfg.DatabaseURL = u.String()
	cfg.RedisURL = testenv.RedisURL(t)
	cfg.CampaignsDir, cfg.TemplatesDir = "../../campaigns", "../../templates"
	cfg.Customers = 200
	cfg.OutboxDir = filepath.Join(t.TempDir(), "outbox")
	cfg.Now = func() time.Time { return now }

	var stdout, stderr bytes.Buffer
	if err := demo.Run(ctx, cfg, &stdout, &stderr); err != nil {
		t.Fatalf("Run: %v\n%s%s", err, &stdout, &stderr)
	}
	out := stdout.String()
	for _, want := range []string{
		"==> audience: generating 200 customers (seed 42) as of 2026-06-01T09:00:00Z\n",
		"==> tick: planning every campaign at 2026-06-01T09:00:00Z\n" +
			"    at-risk-nudge      candidates=25 matched=25 planned=25 enqueued=25\n" +
			"    loyalty-reward     candidates=200 matched=25 planned=25 enqueued=25\n" +
			"    onboarding         candidates=200 matched=25 planned=25 enqueued=25\n" +
			"    referral-ask       candidates=200 matched=25 planned=25 enqueued=25\n" +
			"    thank-you          candidates=200 matched=25 planned=25 enqueued=25\n" +
			"    winback            candidates=25 matched=15 planned=15 enqueued=15\n" +
			"==> workers: sending 140 emails (32 at a time)\n",
		"\n" +
			"        CAMPAIGN     STAGE  SENT  SKIPPED  FAILED\n" +
			"   at-risk-nudge   at_risk    25        0       0\n" +
			"  loyalty-reward     loyal    25        0       0\n" +
			"      onboarding       new    25        0       0\n" +
			"    referral-ask  advocate    25        0       0\n" +
			"       thank-you    active    25        0       0\n" +
			"         winback    lapsed    15        0       0\n" +
			"           TOTAL             140        0       0\n" +
			"\n",
		"The emails are .eml files in " + cfg.OutboxDir + " (open one in any mail client).\n",
		"Done in 0s. To look around:\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	files, err := filepath.Glob(filepath.Join(cfg.OutboxDir, "*", "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 140 {
		t.Errorf("%d .eml files in the outbox, want 140", len(files))
	}
}
