package main

import (
	"context"

	"nurture/internal/bench"
	"nurture/internal/planner"
)

// bench parses the flags of `nurture bench` and runs the benchmark, or,
// for bench.ChildCommand, the child process of its part d.
func (a *app) bench(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == bench.ChildCommand {
		return a.benchChild(ctx, args[1:])
	}
	cfg := bench.DefaultConfig()
	fs := a.flags("bench")
	fs.StringVar(&cfg.Only, "only", cfg.Only, "parts to run: a planning, b enqueueing, c end-to-end sending, d peak RSS of a tick, e planning with the toolkit, f stage sweeps, g event import, h trigger lag, i ingest API")
	fs.IntVar(&cfg.Customers, "customers", cfg.Customers, "customers in the generated audience (parts a, c, d, e, f)")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the generated audience")
	fs.IntVar(&cfg.Tasks, "tasks", cfg.Tasks, "tasks to enqueue (part b)")
	fs.IntVar(&cfg.Sends, "sends", cfg.Sends, "deliveries to plan and send, and messages smtp-source sends (part c)")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "concurrency of the worker process, and of the raw sends (part c)")
	fs.IntVar(&cfg.SMTPConns, "smtp-conns", cfg.SMTPConns, "SMTP connections of the worker process, smtp-source and the raw sends (part c)")
	fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "rounds of part a; each campaign's fastest round counts")
	fs.IntVar(&cfg.Events, "events", cfg.Events, "events to import (part g)")
	fs.IntVar(&cfg.EventFile, "event-file", cfg.EventFile, "events per imported file (part g)")
	fs.IntVar(&cfg.TriggerRate, "trigger-rate", cfg.TriggerRate, "events per second imported while measuring the trigger lag (part h)")
	fs.IntVar(&cfg.APIEvents, "api-events", cfg.APIEvents, "events to post to the ingest API, and to import for its baseline (part i)")
	fs.IntVar(&cfg.APIBatch, "api-batch", cfg.APIBatch, "events per API request (part i)")
	fs.IntVar(&cfg.APIClients, "api-clients", cfg.APIClients, "clients posting at once (part i)")
	fs.DurationVar(&cfg.TriggerTime, "trigger-time", cfg.TriggerTime, "how long part h imports events")
	fs.DurationVar(&cfg.TriggerPoll, "trigger-poll", cfg.TriggerPoll, "period of the trigger poll (parts g, h)")
	fs.BoolVar(&cfg.Reimport, "reimport", false, "import the audience again even when the database holds it")
	fs.StringVar(&cfg.Profile, "profile", "", "write a CPU profile of each part, and of the child processes of parts c and d, to this directory")
	fs.Lookup("database-url").DefValue = bench.DefaultDatabaseURL
	fs.Lookup("database-url").Usage = "PostgreSQL URL of the benchmark's own database, dropped and re-created when it does not hold the audience (BENCH_DATABASE_URL)"
	fs.Lookup("redis-url").DefValue = bench.DefaultRedisURL
	fs.Lookup("redis-url").Usage = "URL of a scratch Redis DB, flushed before and after each part (BENCH_REDIS_URL)"
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if !isSet(fs, "database-url") {
		a.databaseURL = a.env("BENCH_DATABASE_URL", bench.DefaultDatabaseURL)
	}
	if !isSet(fs, "redis-url") {
		a.redisURL = a.env("BENCH_REDIS_URL", bench.DefaultRedisURL)
	}
	cfg.DatabaseURL, cfg.RedisURL = a.databaseURL, a.redisURL
	cfg.CampaignsDir, cfg.TemplatesDir = a.campaignsDir, a.templatesDir
	cfg.LogLevel, cfg.Log = a.logLevel, a.log
	return bench.Run(ctx, cfg, a.stdout, a.stderr)
}

// benchChild is the child process of the benchmark's part d: it connects
// and loads the campaigns the parent names, and bench.RunChild does the
// rest.
func (a *app) benchChild(ctx context.Context, args []string) error {
	fs := a.flags("bench " + bench.ChildCommand)
	baseline := fs.Bool("baseline", false, "connect and load the campaigns, but do not tick")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the tick to this file")
	sweep := fs.Bool("sweep", false, "record the stage sweep instead of ticking")
	ta, err := a.tickFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	defer ta.store.Close()
	q, closeQueue, err := a.openQueue(ctx)
	if err != nil {
		return err
	}
	defer closeQueue()
	return bench.RunChild(ctx, bench.ChildConfig{
		Planner: planner.New(ta.store, a.log), Rules: ta.content.Rules, Targets: ta.targets, At: ta.at,
		Queue: q, Baseline: *baseline, Sweep: *sweep, CPUProfile: *cpuprofile,
	}, a.stdout, a.stderr)
}
