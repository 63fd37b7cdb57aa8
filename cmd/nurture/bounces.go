package main

import (
	"context"
	"fmt"
	"os"

	"nurture/internal/bounce"
	"nurture/internal/metrics"
	"nurture/internal/store"
	"nurture/internal/unsubscribe"
)

// bounces is `nurture bounces import FILE...`.
func (a *app) bounces(ctx context.Context, args []string) error {
	fs := a.flags("bounces")
	ttl := a.envDuration("UNSUBSCRIBE_TTL", unsubscribe.DefaultTTL)
	secret := a.env("SECRET", a.getenv("UNSUBSCRIBE_SECRET"))
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 2 || fs.Arg(0) != "import" {
		fs.Usage()
		return exitError{code: 2}
	}
	files := fs.Args()[1:]
	var tokens *unsubscribe.Tokens
	if secret != "" {
		var err error
		if tokens, err = unsubscribe.NewTokens(secret, ttl, nil); err != nil {
			return fmt.Errorf("SECRET: %w", err)
		}
	}
	c, st, err := a.contentAndStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	settings := &c.Campaigns().Settings
	var m *metrics.Metrics // a command exports no metrics
	rec := bounce.NewRecorder(st, func() store.SoftBounceLimit { return softBounceLimit(settings) }, m, a.log)
	im := bounce.NewImporter(rec, st, bounce.ImporterConfig{Tokens: tokens}, a.log)
	var total bounce.Summary
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		var sum bounce.Summary
		err = im.ImportFile(ctx, name, f, &sum)
		f.Close()
		// What was read before a failure is recorded: say so, then stop.
		fmt.Fprintf(a.stdout, "%s: %s\n", name, describeSummary(sum))
		for _, p := range sum.Problems {
			fmt.Fprintln(a.stdout, p)
		}
		if err != nil {
			return err
		}
		total.Messages += sum.Messages
		total.Hard += sum.Hard
		total.Soft += sum.Soft
		total.Duplicates += sum.Duplicates
		total.Ignored += sum.Ignored
		total.Unsubscribed += sum.Unsubscribed
		total.AlreadyUnsubscribed += sum.AlreadyUnsubscribed
		total.Problems = append(total.Problems, sum.Problems...)
	}
	if len(files) > 1 {
		fmt.Fprintf(a.stdout, "total: %s\n", describeSummary(total))
	}
	if n := len(total.Problems); n > 0 {
		return exitError{code: 1, msg: fmt.Sprintf("nurture bounces import: %d message(s) not processed; the others were", n)}
	}
	return nil
}

func describeSummary(s bounce.Summary) string {
	return fmt.Sprintf("%d messages: %d hard bounces, %d soft bounces, %d already recorded, %d delivered, %d unsubscribed, %d already unsubscribed, %d not processed",
		s.Messages, s.Hard, s.Soft, s.Duplicates, s.Ignored, s.Unsubscribed, s.AlreadyUnsubscribed, len(s.Problems))
}
