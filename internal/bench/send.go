package bench

import (
	"context"
	"fmt"
	"time"

	"nurture/internal/mail"
	"nurture/internal/planner"
	"nurture/internal/queue"
	"nurture/internal/smtptest"
	"nurture/internal/store"
	"nurture/internal/worker"
)

// benchFrom is the sender of part c's emails, for the workers and the raw
// sends alike.
const benchFrom = "nurture <nurture@localhost>"

// sending is part c: deliveries planned by a tick, sent by in-process
// workers to an in-process SMTP sink until every row says sent, against
// raw mail.Sender.Send calls to the same sink with the same connections
// and concurrency (no database, no queue).
func (b *bench) sending(ctx context.Context) error {
	sink, err := smtptest.New(smtptest.Discard())
	if err != nil {
		return fmt.Errorf("start the SMTP sink: %w", err)
	}
	defer sink.Close()
	mcfg := mail.Config{URL: sink.URL(), Conns: b.cfg.SMTPConns}

	raw, err := b.rawSends(ctx, mcfg, sink)
	if err != nil {
		return err
	}
	e2e, err := b.workerSends(ctx, mcfg, sink)
	if err != nil {
		return err
	}
	n := b.cfg.Sends
	r := rate(n, e2e.send)
	rss, err := peakRSS()
	if err != nil {
		return err
	}
	b.add(result{
		name: fmt.Sprintf("(c) End to end: %s deliveries, tick → Redis → %d workers → SMTP sink (%d connections)",
			count(float64(n)), b.cfg.Workers, b.cfg.SMTPConns),
		value: fmt.Sprintf("%s sends/s (%s; %s of %s rows sent, %s at the sink; planning them took %s more; peak RSS of the whole bench process, SMTP sink included, %d MB)",
			count(r), secs(e2e.send), count(float64(e2e.sent)), count(float64(n)), count(float64(e2e.received)), secs(e2e.plan), rss>>20),
		baseline: fmt.Sprintf("raw `mail.Sender.Send`, same sink, connections and concurrency: %s/s", count(rate(n, raw))),
		ratio:    e2e.send.Seconds() / raw.Seconds(),
		target:   "≥ 3,000 sends/s, all recorded",
		met:      met(r >= 3000 && e2e.sent == n),
	})
	return nil
}

// rawSends sends --sends copies of the campaign's rendered email and
// returns the time it took.
func (b *bench) rawSends(ctx context.Context, mcfg mail.Config, sink *smtptest.Server) (time.Duration, error) {
	msg, err := b.sampleMessage()
	if err != nil {
		return 0, err
	}
	sender, err := mail.NewSender(ctx, mcfg, b.log)
	if err != nil {
		return 0, err
	}
	defer sender.Close()
	n, before := b.cfg.Sends, sink.Count()
	b.progress("send: baseline, %d raw sends, %d at a time over %d SMTP connections", n, b.cfg.Workers, b.cfg.SMTPConns)
	start := time.Now()
	err = parallel(ctx, n, b.cfg.Workers, func(ctx context.Context, i int) error {
		m := *msg
		m.ID = fmt.Sprintf("raw-%08d", i)
		m.MessageID = mail.MessageID(m.ID, "localhost")
		_, err := sender.Send(ctx, &m)
		return err
	})
	if err != nil {
		return 0, err
	}
	elapsed := time.Since(start)
	if got := sink.Count() - before; got != n {
		return 0, fmt.Errorf("the SMTP sink received %d of %d raw sends", got, n)
	}
	return elapsed, nil
}

// sampleMessage is the email of part c's campaign for a sample customer,
// as a worker would build it.
func (b *bench) sampleMessage() (*mail.Message, error) {
	t := b.send.Rules.Target(benchSendCampaign)
	d := mail.SampleData()
	d.Campaign = benchSendCampaign
	r, err := b.send.Templates.Render(t.Campaign.Email.Template, d)
	if err != nil {
		return nil, err
	}
	return &mail.Message{
		From:    benchFrom,
		To:      d.Facts.Email,
		Subject: r.Subject,
		HTML:    r.HTML,
		Text:    r.Text,
		Headers: map[string]string{"X-Nurture-Campaign": benchSendCampaign},
	}, nil
}

// e2eTiming is the end-to-end run of part c.
type e2eTiming struct {
	plan, send     time.Duration
	sent, received int
}

// workerSends plans --sends deliveries with a tick, then runs the workers
// until every delivery is finished.
func (b *bench) workerSends(ctx context.Context, mcfg mail.Config, sink *smtptest.Server) (e2eTiming, error) {
	var e e2eTiming
	if err := b.st.ClearDeliveries(ctx); err != nil {
		return e, err
	}
	if err := b.flushRedis(ctx); err != nil {
		return e, err
	}
	defer b.flushRedis(context.WithoutCancel(ctx))
	start := time.Now()
	if err := b.planSends(ctx); err != nil {
		return e, err
	}
	e.plan = time.Since(start)
	before := sink.Count()
	counts, elapsed, err := b.runWorkers(ctx, mcfg, sink, before)
	if err != nil {
		return e, err
	}
	e.send = elapsed
	e.sent = counts[store.StatusSent]
	e.received = sink.Count() - before
	if e.sent != b.cfg.Sends {
		return e, fmt.Errorf("%d of %d deliveries sent; by status: %v", e.sent, b.cfg.Sends, counts)
	}
	return e, nil
}

// planSends ticks part c's campaign, which plans and enqueues one delivery
// for each of the first --sends customers.
func (b *bench) planSends(ctx context.Context) error {
	n := b.cfg.Sends
	b.progress("send: planning %d deliveries", n)
	t := b.send.Rules.Target(benchSendCampaign)
	q := queue.NewClient(b.rdb, queue.Config{})
	res, err := planner.New(b.st.Store, b.log).Tick(ctx, b.send.Rules, t, b.cfg.At, q, planner.TickOptions{})
	if err != nil {
		return err
	}
	if res.Planned != n || res.Enqueued != n {
		return fmt.Errorf("the tick planned %d and enqueued %d deliveries, want %d", res.Planned, res.Enqueued, n)
	}
	return nil
}

// runWorkers runs an Asynq worker server until every delivery is finished,
// and returns the deliveries by status and the time from the server's start
// to the last delivery finished.
func (b *bench) runWorkers(ctx context.Context, mcfg mail.Config, sink *smtptest.Server, before int) (map[string]int, time.Duration, error) {
	sender, err := mail.NewSender(ctx, mcfg, b.log)
	if err != nil {
		return nil, 0, err
	}
	defer sender.Close()
	w := worker.New(worker.Config{From: benchFrom}, b.st.Store, sender,
		&worker.Content{Campaigns: b.send.Campaigns(), Templates: b.send.Templates}, nil, b.log)
	defer w.Close()
	queues := []string{b.send.Rules.Target(benchSendCampaign).Campaign.Queue}
	srv := worker.NewServer(b.rdb, worker.ServerConfig{Concurrency: b.cfg.Workers, Queues: queues,
		PollInterval: 100 * time.Millisecond, RetryBase: time.Second}, b.log)
	b.progress("send: %d workers sending %d deliveries", b.cfg.Workers, b.cfg.Sends)
	start := time.Now()
	if err := srv.Start(w); err != nil {
		return nil, 0, err
	}
	defer srv.Shutdown()
	counts, err := b.waitFinished(ctx, sink, before, b.cfg.Sends)
	return counts, time.Since(start), err
}

// waitFinished waits until none of the deliveries is planned, queued or
// sending, and returns their number by status; before is the sink's count
// when the workers started. Counting deliveries scans the whole table,
// which would take database time from the workers if done often, so it
// polls the sink's count in memory, and the database only once the sink
// has every email, or every two seconds. It gives up when nothing finishes
// for a minute.
func (b *bench) waitFinished(ctx context.Context, sink *smtptest.Server, before, total int) (map[string]int, error) {
	tk := time.NewTicker(50 * time.Millisecond)
	defer tk.Stop()
	lastDone, lastChange, lastPoll := -1, time.Now(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tk.C:
		}
		if sink.Count()-before < total && time.Since(lastPoll) < 2*time.Second {
			continue
		}
		lastPoll = time.Now()
		byStatus, err := b.deliveriesByStatus(ctx)
		if err != nil {
			return nil, err
		}
		done := byStatus[store.StatusSent] + byStatus[store.StatusFailed] + byStatus[store.StatusSkipped]
		if done >= total {
			return byStatus, nil
		}
		fmt.Fprintf(b.stderr, "    %d/%d finished\n", done, total)
		if done != lastDone {
			lastDone, lastChange = done, time.Now()
		}
		if time.Since(lastChange) > time.Minute {
			return byStatus, fmt.Errorf("no delivery finished for a minute; %d of %d finished, by status: %v", done, total, byStatus)
		}
	}
}

// deliveriesByStatus counts every delivery by status.
func (b *bench) deliveriesByStatus(ctx context.Context) (map[string]int, error) {
	counts, err := b.st.DeliveryCounts(ctx)
	if err != nil {
		return nil, err
	}
	by := map[string]int{}
	for _, c := range counts {
		by[c.Status] += c.N
	}
	return by, nil
}
