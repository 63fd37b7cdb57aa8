// Command nurture plans lifecycle-marketing campaigns from YAML and sends
// them through Asynq workers over SMTP, recording every result in
// PostgreSQL. Run `nurture help` for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil {
		var ex exitError
		if errors.As(err, &ex) {
			if ex.msg != "" {
				fmt.Fprintln(os.Stderr, ex.msg)
			}
			os.Exit(ex.code)
		}
		fmt.Fprintln(os.Stderr, "nurture:", err)
		os.Exit(1)
	}
}

// exitError ends the program with a status and, optionally, a last message
// (the details having been printed already).
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return fmt.Sprintf("exit status %d: %s", e.code, e.msg) }

const usage = `nurture: lifecycle-marketing campaigns from YAML, sent by Asynq workers over SMTP.

Usage: nurture COMMAND [flags]

Commands:
  migrate                         create the database if needed and apply migrations
  lint                            check campaigns, lifecycle and templates
  schema [--file KIND]            JSON Schema of the campaign files, for editors
  import customers|events FILE|-  import JSON Lines (--strict: all or nothing)
  stage --at TIME [--json]        each customer's lifecycle stage at TIME
  plan --at TIME [--campaign NAME] [--json]
                                  dry run: who would get which email at TIME
  run-once --at TIME [--campaign NAME]
                                  plan and enqueue one tick of every campaign
  deliveries [--campaign NAME] [--customer ID] [--status S] [--json]
                                  delivery rows: status, reason, attempts
  explain CUSTOMER --at TIME [--json]
                                  why a customer would or would not get each campaign
  report [--campaign NAME] [--since T] [--until T] [--json]
                                  what each campaign sent and earned, uplift over the holdout
  preview CAMPAIGN --customer ID [--at TIME] [--step N] [--variant V] [--format text|html|eml]
                                  print a customer's email as a worker would send it
  send-test CAMPAIGN --customer ID --to ADDRESS [--step N] [--variant V]
                                  send one copy marked [TEST] to ADDRESS, recorded nowhere
  suppress [add] [--reason TEXT] EMAIL... | remove EMAIL... | list
                                  the addresses never to email
  subscribe ID --source TEXT      subscribe a customer again, even one who
                                  unsubscribed themselves; TEXT says who asked
  bounces import FILE...          record bounces and mailto unsubscribe requests
                                  from .eml or mbox files
  forget ID...                    erase people: their data goes, their address
                                  stays suppressed as a hash
  serve [--role scheduler,worker,http]
                                  run the scheduler, workers and HTTP endpoints
  demo                            load a sample audience, replay a few days, send
  bench                           measure planning, enqueueing and sending
  healthcheck [--http-addr ADDR]  exit 0 when the HTTP role's /healthz answers 200

Every command accepts --database-url, --redis-url, --campaigns DIR,
--templates DIR and --log-level (defaults from DATABASE_URL, REDIS_URL,
CAMPAIGNS_DIR, TEMPLATES_DIR and LOG_LEVEL) and reads those it needs.
Run 'nurture COMMAND -h' for what a command does, an example and its flags.
`

// run is the whole program; main only turns its error into an exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError{code: 2}
	}
	cmd, rest := args[0], args[1:]
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	switch cmd {
	case "migrate":
		return a.migrate(ctx, rest)
	case "lint":
		return a.lint(ctx, rest)
	case "schema":
		return a.schemaCmd(ctx, rest)
	case "import":
		return a.importCmd(ctx, rest)
	case "stage":
		return a.stage(ctx, rest)
	case "plan":
		return a.plan(ctx, rest)
	case "run-once":
		return a.runOnce(ctx, rest)
	case "deliveries":
		return a.deliveries(ctx, rest)
	case "explain":
		return a.explain(ctx, rest)
	case "report":
		return a.report(ctx, rest)
	case "suppress":
		return a.suppress(ctx, rest)
	case "subscribe":
		return a.subscribe(ctx, rest)
	case "bounces":
		return a.bounces(ctx, rest)
	case "forget":
		return a.forget(ctx, rest)
	case "preview":
		return a.preview(ctx, rest)
	case "send-test":
		return a.sendTest(ctx, rest)
	case "serve":
		return a.serve(ctx, rest)
	case "demo":
		return a.demo(ctx, rest)
	case "bench":
		return a.bench(ctx, rest)
	case "healthcheck":
		return a.healthcheck(ctx, rest)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "nurture: unknown command %q\n\n%s", cmd, usage)
		return exitError{code: 2}
	}
}
