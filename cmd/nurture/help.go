package main

import "nurture/internal/bench"

// needs are the groups of common flags a command reads. A command
// registers only the groups it needs, so its -h lists only flags that do
// something, and a malformed variable it does not read cannot stop it.
type needs uint8

const (
	needDB      needs = 1 << iota // --database-url (DATABASE_URL)
	needRedis                     // --redis-url (REDIS_URL)
	needContent                   // --campaigns and --templates (CAMPAIGNS_DIR, TEMPLATES_DIR)
	needLog                       // --log-level (LOG_LEVEL)
)

// command is a subcommand as its -h shows it.
type command struct {
	name        string
	args        string // after the name in the usage line
	description string // one paragraph, wrapped at 72 columns
	example     string // one command line, run from the repository root
	needs       needs
	// flags are the command's own flags, beyond those of needs; the help
	// test checks that -h lists exactly these and those of needs.
	flags []string
}

// commands returns every subcommand that has flags, in the order of the
// usage text. flags looks a command up here by name.
func commands() []command {
	return []command{
		{
			name: "migrate",
			description: `Creates the database if it does not exist and applies the embedded
migrations that it lacks. Other commands refuse a database with pending
migrations.`,
			example: "nurture migrate --database-url postgres://localhost:5432/nurture",
			needs:   needDB | needLog,
		},
		{
			name: "lint",
			description: `Checks lifecycle.yaml and every campaign in the campaigns directory, and
the templates they name, without connecting to anything.
Prints every problem as file:line:col: message and exits 1 if there is
any.`,
			example: "nurture lint --campaigns campaigns --templates templates",
			needs:   needContent,
		},
		{
			name: "schema",
			args: "[--file campaign|lifecycle|settings]",
			description: `Prints the JSON Schema (draft 2020-12) of campaign files, lifecycle.yaml
and settings.yaml, generated from nurture's own types: one document with
the three under $defs, or one of them alone with --file. Editors use it
to complete and check YAML as you type; lint remains the judge.`,
			example: "nurture schema --file campaign > schema/campaign.json",
			flags:   []string{"file"},
		},
		{
			name: "import",
			args: "customers|events FILE|-",
			description: `Imports customers (upserted by id) or events from a JSON Lines file,
or from stdin with "-". Bad lines are reported with their line number
and skipped, and the command exits 1; with --strict, one bad line
rejects the whole file and nothing is written.`,
			example: "nurture import customers examples/customers.jsonl --strict",
			needs:   needDB,
			flags:   []string{"strict"},
		},
		{
			name: "stage",
			args: "--at TIME [--json]",
			description: `Prints each customer's lifecycle stage and inactive days as of TIME,
evaluated with the campaigns directory's lifecycle.yaml. Writes nothing.`,
			example: "nurture stage --at 2026-11-24T09:00:00Z",
			needs:   needDB | needContent | needLog,
			flags:   []string{"at", "json"},
		},
		{
			name: "plan",
			args: "--at TIME [--campaign NAME] [--json]",
			description: `Dry run: evaluates every campaign, or the one named, as if it fired at
TIME, and prints who would get which email, triggers due at TIME
included. It runs the scheduler's own code and writes nothing (the stage
sweep of run-once is simulated in memory).`,
			example: "nurture plan --at 2026-11-24T09:00:00Z --campaign winback",
			needs:   needDB | needContent | needLog,
			flags:   []string{"at", "campaign", "json"},
		},
		{
			name: "run-once",
			args: "--at TIME [--campaign NAME]",
			description: `Records every customer's stage at TIME (the stage sweep), then plans
one tick of every campaign, or the one named, at TIME and the triggers due
at TIME, and enqueues the deliveries, as the scheduler does. Workers
(serve --role worker) send them.`,
			example: "nurture run-once --at 2026-11-24T09:00:00Z",
			needs:   needDB | needRedis | needContent | needLog,
			flags:   []string{"at", "campaign"},
		},
		{
			name: "deliveries",
			args: "[--campaign NAME] [--customer ID] [--status S] [--json]",
			description: `Lists delivery rows, sorted by campaign, customer and occurrence: who
was planned which email, its status, the reason it was not sent, its
attempts and Message-ID. Writes nothing.`,
			example: "nurture deliveries --campaign winback --status skipped",
			needs:   needDB,
			flags:   []string{"campaign", "customer", "status", "json"},
		},
		{
			name: "explain",
			args: "CUSTOMER --at TIME [--json]",
			description: `Shows the customer's facts and stage at TIME and, for every campaign,
whether an evaluation at TIME would plan them and, if not, the first rule
that keeps them out: stage, inactive_days, where, cooldown, max_sends,
exit_when, unsubscribed, suppressed, frequency cap, not due, ... Writes
nothing.`,
			example: "nurture explain c16 --at 2026-11-24T09:00:00Z",
			needs:   needDB | needContent | needLog,
			flags:   []string{"at", "json"},
		},
		{
			name: "report",
			args: "[--campaign NAME] [--since T] [--until T] [--json]",
			description: `Reports, per campaign and then per variant (the holdout included) and
per journey step, what was planned, sent, failed, skipped (by reason),
held out and unfinished, the unsubscribes, and the purchases attributed
to the emails (last touch within the campaign's conversion_window):
conversions, revenue, conversion rate and, for a campaign with a
holdout, the uplift over the holdout with its 95% confidence interval.
--since and --until select deliveries by send time. Purchases imported
since the last attribution are attributed first.`,
			example: "nurture report --campaign winback --json",
			needs:   needDB | needContent | needLog,
			flags:   []string{"campaign", "since", "until", "json"},
		},
		{
			name: "preview",
			args: "CAMPAIGN --customer ID [--at TIME] [--step N] [--variant V] [--format text|html|eml]",
			description: `Renders one customer's email of a campaign, as a worker would build it,
to stdout: text prints the subject and the text part, html the HTML
part, eml the whole message with its headers. Facts and stage are those
at TIME (default now). --step picks a journey's step, --variant an
experiment variant. Writes nothing.`,
			example: "nurture preview winback --customer c11 --at 2026-11-24T09:00:00Z",
			needs:   needDB | needContent,
			flags:   []string{"customer", "at", "step", "variant", "format", "from", "unsubscribe-url"},
		},
		{
			name: "send-test",
			args: "CAMPAIGN --customer ID --to ADDRESS [--step N] [--variant V]",
			description: `Sends one copy of a customer's email of a campaign to ADDRESS only, over
SMTP_URL (or into the outbox) and from the sender a worker would use,
with "[TEST] " before the subject and no unsubscribe link. It is
recorded nowhere: no delivery row, and a Message-ID of its own.`,
			example: "nurture send-test winback --customer c11 --to qa@example.com",
			needs:   needDB | needContent | needLog,
			flags:   []string{"customer", "to", "step", "variant", "from", "smtp-url", "outbox", "dkim-key-file", "dkim-selector"},
		},
		{
			name: "suppress",
			args: "[add] [--reason TEXT] [--source TEXT] EMAIL... | remove EMAIL... | list [--json]",
			description: `Keeps the suppression list: addresses no email is planned or sent to,
whatever their customer's consent says. "add" (the default) puts
addresses on it with a reason and a source, "remove" takes them off,
"list" prints it. Addresses are compared without regard to case.`,
			example: "nurture suppress add --reason bounce --source postmaster ann@example.com",
			needs:   needDB,
			flags:   []string{"reason", "source", "json"},
		},
		{
			name: "subscribe",
			args: "ID --source TEXT",
			description: `Subscribes a customer again, even one who unsubscribed themselves, and
records in the consent history who asked. Imports never do this.`,
			example: "nurture subscribe c1 --source support-ticket-4711",
			needs:   needDB,
			flags:   []string{"source"},
		},
		{
			name: "bounces",
			args: "import FILE...",
			description: `Reads delivery status notifications (RFC 3464) from .eml or mbox files
and records each bounce against the delivery whose Message-ID it names:
a hard bounce suppresses the address, soft bounces do at
soft_bounce_limit. A message whose subject is unsubscribe-TOKEN (the
mailto of List-Unsubscribe) unsubscribes its customer; SECRET checks the
token. Reading a file again records nothing twice. Prints what it did
per file and every message it could not use, then exits 1 if there was
any.`,
			example: "nurture bounces import /var/mail/bounces",
			needs:   needDB | needContent | needLog,
		},
		{
			name: "forget",
			args: "ID...",
			description: `Erases each person: the customer row, their stage history and the
properties of their events. Their deliveries, events, journeys and
consent history stay for the campaigns' counts, under an opaque token
instead of the id. Their address stays suppressed as a SHA-256 hash, so
a later import of it is never emailed. Unsent deliveries are skipped;
the command waits for emails being sent. Exits 1 if an id is unknown.`,
			example: "nurture forget c1 c2",
			needs:   needDB,
		},
		{
			name: "serve",
			args: "[--role scheduler,worker,http]",
			description: `Runs the long-lived roles: the scheduler (cron per campaign, one
leader), the workers (send each delivery and record the outcome) and
HTTP (/monitoring/, /healthz, /metrics). Edits under the campaigns and
templates directories, and SIGHUP, reload them, all or nothing; SIGTERM
drains.`,
			example: "nurture serve --role worker",
			needs:   needDB | needRedis | needContent | needLog,
			flags:   []string{"role", "http-addr", "smtp-url", "smtp-conns", "outbox", "from", "unsubscribe-url", "concurrency", "cpuprofile", "dkim-key-file", "dkim-selector"},
		},
		{
			name: "demo",
			args: "[--customers N] [--days N]",
			description: `Re-creates a database and empties a Redis database of its own (not
DATABASE_URL or REDIS_URL), loads a generated sample audience and replays
a few simulated days: each day some carts and orders are imported, what
run-once does runs (stage sweep, campaigns, triggers, journey steps) and
the day's emails are sent to the file outbox on a simulated clock, inside
their send windows. It prints what was sent, held out, capped, what was
not sent and why.`,
			example: "nurture demo --customers 400 --days 3",
			needs:   needDB | needRedis | needContent | needLog,
			flags:   []string{"customers", "days", "seed", "outbox", "smtp-url", "dkim-key-file", "dkim-selector"},
		},
		{
			name: "bench",
			args: "[--only a,b,c,d,e,f,g,h,i] [--customers N] [--tasks N] [--sends N] [--events N]",
			description: `Measures planning (a), enqueueing (b), end-to-end sending (c), the
peak memory of a tick (d), planning with the toolkit (e), stage sweeps
(f), event import with triggers polled (g), the trigger lag (h) and
the ingest API against the importer (i) on a
generated audience, in a database and a Redis database of its own
(BENCH_DATABASE_URL, BENCH_REDIS_URL). Part c runs Postfix's smtp-sink
and smtp-source (Debian: apt-get install postfix).`,
			example: "nurture bench --only a,b --customers 100000",
			needs:   needDB | needRedis | needContent | needLog,
			flags: []string{"only", "customers", "seed", "tasks", "sends", "workers", "smtp-conns", "rounds",
				"events", "event-file", "trigger-rate", "trigger-time", "trigger-poll", "api-events", "api-batch", "api-clients", "reimport", "profile"},
		},
		{
			name: "healthcheck",
			args: "[--http-addr ADDR]",
			description: `Asks the HTTP role on this machine for /healthz and prints the answer:
exit status 0 when it is 200, 1 otherwise. For container health checks
in images without curl.`,
			example: "nurture healthcheck --http-addr 127.0.0.1:8080",
			flags:   []string{"http-addr"},
		},
		{
			name: "bench " + bench.ChildCommand,
			args: "--at TIME [--baseline] [--sweep] [--cpuprofile FILE]",
			description: `The child process of bench's parts d and f, which measures the peak
memory of one tick or stage sweep: bench runs it, people need not.`,
			example: "nurture bench --only d",
			needs:   needDB | needRedis | needContent | needLog,
			flags:   []string{"at", "campaign", "baseline", "sweep", "cpuprofile"},
		},
	}
}

// lookupCommand returns the command named name. A name missing from
// commands gets every common flag; TestHelp checks that none is missing.
func lookupCommand(name string) command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return command{name: name, needs: needDB | needRedis | needContent | needLog}
}
