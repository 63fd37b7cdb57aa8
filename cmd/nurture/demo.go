package main

import (
	"context"
	"fmt"

	"nurture/internal/demo"
)

// demo parses the flags of `nurture demo` and runs it.
func (a *app) demo(ctx context.Context, args []string) error {
	cfg := demo.DefaultConfig()
	fs := a.flags("demo")
	fs.IntVar(&cfg.Customers, "customers", cfg.Customers, "size of the generated audience")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the generated audience and of each day's activity")
	fs.IntVar(&cfg.Days, "days", cfg.Days, "how many simulated days to replay, one evaluation every 24 hours")
	fs.StringVar(&cfg.OutboxDir, "outbox", a.env("OUTBOX_DIR", cfg.OutboxDir), "directory for .eml files when no SMTP_URL is set (OUTBOX_DIR)")
	fs.StringVar(&cfg.SMTPURL, "smtp-url", a.env("SMTP_URL", ""), "send to this SMTP server instead of the outbox (SMTP_URL)")
	cfg.SMTPConns = a.envInt("SMTP_CONNS", cfg.SMTPConns) // read before parse, which reports a malformed value
	dkim := a.registerDKIMFlags(fs)
	fs.Lookup("database-url").DefValue = demo.DefaultDatabaseURL
	fs.Lookup("redis-url").DefValue = demo.DefaultRedisURL
	// The demo's own, never DATABASE_URL or REDIS_URL: say so in -h.
	fs.Lookup("database-url").Usage = "PostgreSQL URL of the demo's own database, which it drops and re-creates (not read from DATABASE_URL)"
	fs.Lookup("redis-url").Usage = "Redis URL of the demo's own database, which it empties (not read from REDIS_URL)"
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if cfg.Days < 1 {
		return exitError{code: 2, msg: fmt.Sprintf("nurture demo: --days %d: must be at least 1", cfg.Days)}
	}
	var err error
	if cfg.DKIM, err = dkim.signer(); err != nil {
		return err
	}
	// The demo empties its database and drains its queues: it never uses
	// DATABASE_URL or REDIS_URL, only the flags (or its own defaults), so
	// it cannot touch a real installation by accident.
	if isSet(fs, "database-url") {
		cfg.DatabaseURL = a.databaseURL
	}
	if isSet(fs, "redis-url") {
		cfg.RedisURL = a.redisURL
	}
	cfg.CampaignsDir, cfg.TemplatesDir = a.campaignsDir, a.templatesDir
	cfg.Log = a.log
	return demo.Run(ctx, cfg, a.stdout, a.stderr)
}
