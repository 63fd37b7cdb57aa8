package demo_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nurture/internal/demo"
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
	dbURL, _ := testenv.ScratchDatabaseURL(t, "demo")
	now := time.Date(2026, 6, 1, 9, 0, 42, 0, time.UTC)
	cfg := demo.DefaultConfig()
	cfg.DatabaseURL = dbURL
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
	head := "==> audience: generating 200 customers (seed 42) as of 2026-06-01T09:00:00Z\n" +
		"==> tick: planning every campaign at 2026-06-01T09:00:00Z\n" +
		"    at-risk-nudge      candidates=25 matched=25 planned=25 enqueued=25\n" +
		"    loyalty-reward     candidates=200 matched=25 planned=25 enqueued=25\n" +
		"    onboarding         candidates=200 matched=25 planned=25 enqueued=25\n" +
		"    referral-ask       candidates=200 matched=25 planned=25 enqueued=25\n" +
		"    thank-you          candidates=200 matched=25 planned=25 enqueued=25\n" +
		"    winback            candidates=25 matched=15 planned=15 enqueued=15\n" +
		"==> meanwhile: what happens between planning and sending\n" +
		"    c0000007 clicks an unsubscribe link\n" +
		"    customer0000184@example.com (c0000184) bounces and is suppressed\n" +
		"==> workers: sending 140 emails (32 at a time)\n"
	// Between the two: progress lines, as many as the sending takes seconds.
	tail := "\n" +
		"        CAMPAIGN     STAGE  SENT  SKIPPED  FAILED\n" +
		"   at-risk-nudge   at_risk    24        1       0\n" +
		"  loyalty-reward     loyal    25        0       0\n" +
		"      onboarding       new    25        0       0\n" +
		"    referral-ask  advocate    25        0       0\n" +
		"       thank-you    active    25        0       0\n" +
		"         winback    lapsed    14        1       0\n" +
		"           TOTAL             138        2       0\n" +
		"\n" +
		"Not sent, and why:\n" +
		"  at-risk-nudge  c0000007  skipped  unsubscribed\n" +
		"  winback        c0000184  skipped  suppressed\n" +
		"\n" +
		"Left out by a rule:\n" +
		"  thank-you: 75 active or loyal or advocate customers left out by where: days_since_purchase != nil && days_since_purchase <= 2\n" +
		"  winback: 10 lapsed customers left out by where: attributes.plan != \"enterprise\"\n" +
		"\n" +
		"The emails are .eml files in " + cfg.OutboxDir + " (open one in any mail client).\n" +
		"Done in 0s.\n" +
		"\n" +
		"Next, three things to try:\n" +
		"  1. Read the at-risk-nudge email to c0000015, as their mail client will show it:\n" +
		"       cat " + filepath.Join(cfg.OutboxDir, "at-risk-nudge", "c0000015-*.eml") + "\n" +
		"  2. Change a campaign: edit ../../campaigns/winback.yaml (drop its where), then see who it would reach:\n" +
		"       go run ./cmd/nurture plan --at 2026-06-01T09:00:00Z --campaign winback --database-url '" + cfg.DatabaseURL + "' --campaigns ../../campaigns --templates ../../templates\n" +
		"  3. Walk through examples/, a small audience in every stage (README, \"Tutorial\"):\n" +
		"       go run ./cmd/nurture migrate\n" +
		"       go run ./cmd/nurture import customers examples/customers.jsonl\n" +
		"       go run ./cmd/nurture import events examples/events.jsonl\n"
	_, afterDB, _ := strings.Cut(out, "\n==> audience:")
	afterDB = "==> audience:" + afterDB
	progress, ok := strings.CutPrefix(afterDB, head)
	if ok {
		progress, ok = strings.CutSuffix(progress, tail)
	}
	if !ok {
		t.Fatalf("output:\n%s\nwant, after the database line:\n%s    N/140 finished\n%s", out, head, tail)
	}
	for line := range strings.Lines(progress) {
		if !strings.HasSuffix(line, "/140 finished\n") || !strings.HasPrefix(line, "    ") {
			t.Errorf("progress line %q", line)
		}
	}
	if !strings.HasSuffix(progress, "    140/140 finished\n") {
		t.Errorf("progress does not end with 140/140:\n%s", progress)
	}
	// The hint's pattern names the one email it promises.
	if m, err := filepath.Glob(filepath.Join(cfg.OutboxDir, "at-risk-nudge", "c0000015-*.eml")); err != nil || len(m) != 1 {
		t.Errorf("the hint's pattern matches %q (%v), want one file", m, err)
	}
	files, err := filepath.Glob(filepath.Join(cfg.OutboxDir, "*", "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 138 {
		t.Errorf("%d .eml files in the outbox, want 138", len(files))
	}
}
