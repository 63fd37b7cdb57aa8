package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"nurture/internal/mail"
	"nurture/internal/planner"
	"nurture/internal/queue"
	"nurture/internal/smtptest"
	"nurture/internal/store"
	"nurture/internal/worker"
)

// benchFrom is the sender of part c's emails, for the workers and the raw
// sends alike, and benchDomain the right-hand side of their Message-IDs.
const (
	benchFrom   = "nurture <nurture@localhost>"
	benchDomain = "localhost"
)

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
	if err := b.dkimSends(ctx, mcfg, sink, rate(b.cfg.Sends, raw)); err != nil {
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
	ok, why := endToEndMet(r, e2e.sent, n, e2e.tally)
	verdict := met(ok)
	if why != "" {
		verdict += ": " + why
	}
	b.add(result{
		name: fmt.Sprintf("(c) End to end: %s deliveries, tick → Redis → %d workers → SMTP sink (%d connections)",
			count(float64(n)), b.cfg.Workers, b.cfg.SMTPConns),
		value: fmt.Sprintf("%s sends/s (%s; %s of %s rows sent, %s at the sink, %s; planning them took %s more; peak RSS of the whole bench process, SMTP sink included, %d MB)",
			count(r), secs(e2e.send), count(float64(e2e.sent)), count(float64(n)), count(float64(e2e.received)), e2e.tally, secs(e2e.plan), rss>>20),
		baseline: fmt.Sprintf("raw `mail.Sender.Send`, same sink, connections and concurrency: %s/s", count(rate(n, raw))),
		ratio:    e2e.send.Seconds() / raw.Seconds(),
		target:   "≥ 3,000 sends/s, all recorded, one message per delivery at the sink",
		met:      verdict,
	})
	return nil
}

// endToEndMet decides part c's target: n deliveries sent at 3,000/s or
// more, every row recorded sent, and exactly one message per delivery at
// the SMTP sink. When the target is missed, why says which of these failed.
func endToEndMet(rate float64, sent, n int, t sinkTally) (ok bool, why string) {
	var reasons []string
	if rate < 3000 {
		reasons = append(reasons, fmt.Sprintf("under 3,000 sends/s (%s)", count(rate)))
	}
	if sent != n {
		reasons = append(reasons, fmt.Sprintf("%d of %d rows sent", sent, n))
	}
	if !t.exact() {
		reasons = append(reasons, "at the sink: "+t.String())
	}
	return len(reasons) == 0, strings.Join(reasons, "; ")
}

// sinkTally compares the messages the SMTP sink received with the
// deliveries it should have received, one message each, by Message-ID.
type sinkTally struct {
	deliveries int // deliveries expected at the sink
	duplicates int // messages beyond the first of a delivery
	missing    int // deliveries of which no message arrived
	unexpected int // messages whose Message-ID is no delivery's
}

// tallyMessages counts the messages that arrived between two snapshots of
// the sink's counts per Message-ID (smtptest.Server.MessageIDs) against
// want, the Message-IDs of the deliveries.
func tallyMessages(want []string, before, after map[string]int) sinkTally {
	t := sinkTally{deliveries: len(want)}
	expected := make(map[string]bool, len(want))
	for _, id := range want {
		expected[id] = true
		switch n := after[id] - before[id]; {
		case n == 0:
			t.missing++
		case n > 1:
			t.duplicates += n - 1
		}
	}
	for id, n := range after {
		if !expected[id] {
			t.unexpected += n - before[id]
		}
	}
	return t
}

// exact reports whether every delivery arrived exactly once, and nothing
// else did.
func (t sinkTally) exact() bool { return t.duplicates == 0 && t.missing == 0 && t.unexpected == 0 }

func (t sinkTally) String() string {
	if t.exact() {
		return "one per delivery"
	}
	s := fmt.Sprintf("%d duplicates, %d missing", t.duplicates, t.missing)
	if t.unexpected > 0 {
		s += fmt.Sprintf(", %d unexpected", t.unexpected)
	}
	return s
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
	what := "baseline, "
	if mcfg.DKIM != nil {
		what = "DKIM-signed "
	}
	b.progress("send: %s%d raw sends, %d at a time over %d SMTP connections", what, n, b.cfg.Workers, b.cfg.SMTPConns)
	start := time.Now()
	err = parallel(ctx, n, b.cfg.Workers, func(ctx context.Context, i int) error {
		m := *msg
		m.ID = fmt.Sprintf("raw-%08d", i)
		m.MessageID = mail.MessageID(m.ID, benchDomain)
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
	tally          sinkTally
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
	before, beforeIDs := sink.Count(), sink.MessageIDs()
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
	want, err := b.sendMessageIDs(ctx)
	if err != nil {
		return e, err
	}
	e.tally = tallyMessages(want, beforeIDs, sink.MessageIDs())
	return e, nil
}

// sendMessageIDs returns the Message-ID of every delivery of part c's
// campaign.
func (b *bench) sendMessageIDs(ctx context.Context) ([]string, error) {
	var ids []string
	err := b.st.Deliveries(ctx, func(d *store.DeliveryRow) error {
		if d.Campaign == benchSendCampaign {
			ids = append(ids, mail.MessageID(d.ID, benchDomain))
		}
		return nil
	})
	return ids, err
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
	w := worker.New(worker.Config{From: benchFrom, MessageIDDomain: benchDomain}, b.st.Store, queue.NewJournal(b.rdb), sender,
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
