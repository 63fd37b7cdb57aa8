package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	netmail "net/mail"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"nurture/internal/mail"
	"nurture/internal/planner"
	"nurture/internal/queue"
	"nurture/internal/store"
)

// benchFrom is the sender of part c's emails, for the workers and the raw
// sends alike, and benchDomain the right-hand side of their Message-IDs.
const (
	benchFrom   = "nurture <nurture@localhost>"
	benchDomain = "localhost"
)

// Targets of part c's end-to-end run.
const (
	// minSourceRatio is the least rate of nurture end to end, as a share
	// of smtp-source's to the same sink.
	minSourceRatio = 0.85
	// maxWorkerRSS is the most peak RSS of the worker process, in bytes.
	maxWorkerRSS = 100e6
)

// sending is part c: the machine's physical limit, Postfix's smtp-source
// sending the campaign's rendered email to Postfix's smtp-sink, against
// nurture end to end: deliveries planned by a tick (not timed), then a
// worker process (`nurture serve --role worker`) sending them to the same
// kind of sink over as many connections until every row is finished.
// Each run has a fresh sink, started the same way, that dumps what it
// receives, so the messages can be counted by Message-ID. smtp-source
// runs before nurture and again after it, and the baseline is the mean of
// its two times: the speed of a shared machine drifts within minutes, and
// a baseline on one side only takes the drift for nurture's doing. Then
// the DKIM row: raw mail.Sender sends, signed and not.
func (b *bench) sending(ctx context.Context) error {
	for _, tool := range []string{"smtp-sink", "smtp-source"} {
		if _, err := postfixTool(tool); err != nil {
			return err
		}
	}
	before, err := b.sourceSends(ctx)
	if err != nil {
		return err
	}
	e2e, err := b.workerSends(ctx)
	if err != nil {
		return err
	}
	after, err := b.sourceSends(ctx)
	if err != nil {
		return err
	}
	base := before
	base.elapsed = (before.elapsed + after.elapsed) / 2
	b.sendStats = &sendStats{source: before, sourceAfter: after, worker: e2e}
	n, conns := b.cfg.Sends, b.cfg.SMTPConns
	r, baseRate := rate(n, e2e.elapsed), rate(n, base.elapsed)
	ok, why := endToEndMet(r, baseRate, e2e.sent, n, e2e.tally, e2e.peakRSS)
	verdict := met(ok)
	if why != "" {
		verdict += ": " + why
	}
	b.add(result{
		name: fmt.Sprintf("(c) Physical limit: Postfix `smtp-source` → `smtp-sink`, %s copies of the campaign's email (%s bytes) over %d connections",
			count(float64(n)), count(base.scan.meanSize()), conns),
		value: fmt.Sprintf("%s messages/s (the mean time of a run before nurture's, %s/s in %s, and one after it, %s/s in %s; %s and %s of %s at the sink)",
			count(baseRate), count(rate(n, before.elapsed)), secs(before.elapsed), count(rate(n, after.elapsed)), secs(after.elapsed),
			count(float64(before.scan.messages)), count(float64(after.scan.messages)), count(float64(n))),
	})
	b.add(result{
		name: fmt.Sprintf("(c) End to end: %s deliveries planned → nurture worker process (`serve --role worker`, %d at once, %d SMTP connections) → `smtp-sink`",
			count(float64(n)), b.cfg.Workers, conns),
		value: fmt.Sprintf("%s sends/s (%s; %s of %s rows sent; at the sink %s, %s bytes a message; worker peak RSS %s; planning them took %s more, and the next day's tick over the same audience, which plans nothing, %s)",
			count(r), secs(e2e.elapsed), count(float64(e2e.sent)), count(float64(n)), e2e.tally, count(e2e.scan.meanSize()),
			megabytes(e2e.peakRSS), secs(e2e.plan), secs(e2e.replan)),
		baseline: fmt.Sprintf("`smtp-source`, same sink and connections, before and after: %s/s", count(baseRate)),
		ratio:    e2e.elapsed.Seconds() / base.elapsed.Seconds(),
		target:   fmt.Sprintf("≥ %.2f× the `smtp-source` rate, every row sent, one message per delivery at the sink, worker peak RSS < %s", minSourceRatio, megabytes(maxWorkerRSS)),
		met:      verdict,
	})
	b.cpuDetail(before, e2e, after, baseRate, r)
	unsigned, err := b.rawSends(ctx, mail.Config{Conns: conns})
	if err != nil {
		return err
	}
	return b.dkimSends(ctx, rate(b.rawCount(), unsigned))
}

// endToEndMet decides part c's target: n deliveries sent at least at
// minSourceRatio of smtp-source's rate, every row recorded sent, exactly
// one message per delivery at the SMTP sink, and the worker's peak RSS
// under maxWorkerRSS. When the target is missed, why says which of these
// failed.
func endToEndMet(rate, sourceRate float64, sent, n int, t sinkTally, peakRSS int64) (ok bool, why string) {
	var reasons []string
	if rate < minSourceRatio*sourceRate {
		// Rounded down, so that a miss never reads as the target.
		reasons = append(reasons, fmt.Sprintf("%.2f× the smtp-source rate", math.Floor(100*rate/sourceRate)/100))
	}
	if sent != n {
		reasons = append(reasons, fmt.Sprintf("%d of %d rows sent", sent, n))
	}
	if !t.exact() {
		reasons = append(reasons, "at the sink: "+t.String())
	}
	if peakRSS >= maxWorkerRSS {
		reasons = append(reasons, "worker peak RSS "+megabytes(peakRSS))
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
// the sink's counts per Message-ID (before may be nil: an empty sink)
// against want, the Message-IDs of the deliveries.
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

// Names of the CPU groups of part c.
const (
	cpuSender   = "sender" // smtp-source, or the worker process
	cpuPostgres = "postgres"
	cpuRedis    = "redis"
	cpuSink     = "sink"
	cpuBench    = "bench" // this process
)

// sendStats is what part c measured.
type sendStats struct{ source, sourceAfter, worker sendRun }

// sendRun is one timed run of part c against a fresh smtp-sink.
type sendRun struct {
	elapsed time.Duration
	scan    dumpScan // what the sink received
	cpu     cpuUsage // by the cpu* groups

	// nurture's run only
	plan    time.Duration // planning the deliveries, before the clock starts
	replan  time.Duration // the next day's tick over the same audience, which plans nothing
	sent    int           // rows sent
	tally   sinkTally
	peakRSS int64 // of the worker process
}

// cpuGroups are the processes whose CPU part c measures: the sender
// (unless nil: smtp-source's is read when it ends), PostgreSQL's processes
// that work for the benchmark's database, the Redis server of the scratch
// DB, the sink and this process.
func (b *bench) cpuGroups(sink *smtpSink, sender func(pid int, comm string) bool) []cpuGroup {
	port := ""
	if o, err := queue.RedisOptions(b.cfg.RedisURL); err == nil {
		_, port, _ = net.SplitHostPort(o.Addr)
	}
	db := ""
	if u, err := url.Parse(b.cfg.DatabaseURL); err == nil {
		db = strings.TrimPrefix(u.Path, "/")
	}
	groups := []cpuGroup{
		{name: cpuPostgres, match: postgresOf(db)},
		{name: cpuRedis, match: redisServer(port)},
		{name: cpuSink, match: onePID(sink.pid())},
		{name: cpuBench, match: onePID(os.Getpid())},
	}
	if sender != nil {
		groups = append(groups, cpuGroup{name: cpuSender, match: sender})
	}
	return groups
}

// sourceSends is the baseline of part c: smtp-source sends --sends copies
// of the campaign's rendered email, the very bytes a worker would send (but
// one Message-ID for all), over --smtp-conns connections, each sending
// message after message.
func (b *bench) sourceSends(ctx context.Context) (sendRun, error) {
	var run sendRun
	bin, err := postfixTool("smtp-source")
	if err != nil {
		return run, err
	}
	msg, err := b.sampleMessage()
	if err != nil {
		return run, err
	}
	msg.ID = "smtp-source"
	msg.MessageID = mail.MessageID(msg.ID, benchDomain)
	var eml bytes.Buffer
	if err := mail.WriteMessage(&eml, msg, b.cfg.Now()); err != nil {
		return run, err
	}
	file := filepath.Join(b.dir, "smtp-source.eml")
	// smtp-source ends every line with CRLF, and dot-stuffs, itself.
	if err := os.WriteFile(file, bytes.ReplaceAll(eml.Bytes(), []byte("\r\n"), []byte("\n")), 0o644); err != nil {
		return run, err
	}
	from, err := netmail.ParseAddress(benchFrom)
	if err != nil {
		return run, err
	}
	sink, err := startSink(ctx, b.stderr)
	if err != nil {
		return run, err
	}
	defer sink.close()
	n := b.cfg.Sends
	args := []string{"-d", "-s", strconv.Itoa(b.cfg.SMTPConns), "-m", strconv.Itoa(n), "-M", benchDomain,
		"-f", from.Address, "-t", msg.To, "-F", file, sink.addr}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = indent{b.stderr}, indent{b.stderr}
	meter, err := startCPU(b.cpuGroups(sink, nil)...)
	if err != nil {
		return run, err
	}
	b.progress("send: baseline, smtp-source sending %d messages over %d connections", n, b.cfg.SMTPConns)
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return run, fmt.Errorf("%s %s: %w", bin, strings.Join(args, " "), err)
	}
	run.elapsed = time.Since(start)
	if run.cpu, err = meter.stop(); err != nil {
		return run, err
	}
	// smtp-source has ended: its CPU is the kernel's account at its end.
	run.cpu.by[cpuSender] = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	sink.stop()
	if run.scan, err = sink.scan(); err != nil {
		return run, err
	}
	if got := run.scan.ids[msg.MessageID]; run.scan.messages != n || got != n {
		return run, fmt.Errorf("smtp-sink received %d messages, %d of them smtp-source's, of %d sent", run.scan.messages, got, n)
	}
	return run, nil
}

// maxRawSends bounds the raw sends of the DKIM row: signing costs the same
// for every message, and at a million signed sends the row alone would
// take half an hour.
const maxRawSends = 100_000

// rawCount is how many raw sends the DKIM row makes, signed and not.
func (b *bench) rawCount() int { return min(b.cfg.Sends, maxRawSends) }

// rawSends sends rawCount copies of the campaign's rendered email with
// mail.Sender, --workers at a time, to a fresh sink, and returns the time
// it took.
func (b *bench) rawSends(ctx context.Context, mcfg mail.Config) (time.Duration, error) {
	msg, err := b.sampleMessage()
	if err != nil {
		return 0, err
	}
	sink, err := startSink(ctx, b.stderr)
	if err != nil {
		return 0, err
	}
	defer sink.close()
	mcfg.URL = sink.url()
	sender, err := mail.NewSender(ctx, mcfg, b.log)
	if err != nil {
		return 0, err
	}
	defer sender.Close()
	n := b.rawCount()
	what := "unsigned"
	if mcfg.DKIM != nil {
		what = "DKIM-signed"
	}
	b.progress("send: %d raw %s sends, %d at a time over %d SMTP connections", n, what, b.cfg.Workers, mcfg.Conns)
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
	sink.stop()
	scan, err := sink.scan()
	if err != nil {
		return 0, err
	}
	if scan.messages != n || len(scan.ids) != n {
		return 0, fmt.Errorf("smtp-sink received %d messages, %d distinct, of %d raw sends", scan.messages, len(scan.ids), n)
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
		To:      d.Email,
		Subject: r.Subject,
		HTML:    r.HTML,
		Text:    r.Text,
		Headers: map[string]string{"X-Nurture-Campaign": benchSendCampaign},
	}, nil
}

// workerSends plans --sends deliveries with a tick, then runs a worker
// process until every delivery is finished. The clock runs from the
// process's start to the last row finished.
func (b *bench) workerSends(ctx context.Context) (sendRun, error) {
	var run sendRun
	if err := b.st.ClearDeliveries(ctx); err != nil {
		return run, err
	}
	if err := b.flushRedis(ctx); err != nil {
		return run, err
	}
	defer b.flushRedis(context.WithoutCancel(ctx))
	start := time.Now()
	if err := b.planSends(ctx); err != nil {
		return run, err
	}
	run.plan = time.Since(start)
	start = time.Now()
	if err := b.replanSends(ctx); err != nil {
		return run, err
	}
	run.replan = time.Since(start)
	sink, err := startSink(ctx, b.stderr)
	if err != nil {
		return run, err
	}
	defer sink.close()
	cmd, err := b.workerCommand(sink)
	if err != nil {
		return run, err
	}
	workerPID := 0 // set once started; the meter counts it from nothing
	meter, err := startCPU(b.cpuGroups(sink, func(pid int, _ string) bool { return pid == workerPID })...)
	if err != nil {
		return run, err
	}
	n := b.cfg.Sends
	b.progress("send: a worker process sending %d deliveries, %d at once over %d SMTP connections", n, b.cfg.Workers, b.cfg.SMTPConns)
	start = time.Now()
	if err := cmd.Start(); err != nil {
		return run, fmt.Errorf("start the worker process: %w", err)
	}
	workerPID = cmd.Process.Pid
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer stopProcess(cmd.Process, exited)
	counts, err := b.waitFinished(ctx, exited, &dumpCounter{file: sink.dump}, n)
	run.elapsed = time.Since(start)
	if errors.Is(err, errWorkerEnded) {
		return run, fmt.Errorf("%w: %v", err, waitErr)
	}
	if err != nil {
		return run, err
	}
	if run.cpu, err = meter.stop(); err != nil {
		return run, err
	}
	if run.peakRSS, err = peakRSSOf(workerPID); err != nil {
		return run, err
	}
	stopProcess(cmd.Process, exited)
	if waitErr != nil {
		return run, fmt.Errorf("the worker process, stopped: %w", waitErr)
	}
	sink.stop()
	if run.scan, err = sink.scan(); err != nil {
		return run, err
	}
	run.sent = counts[store.StatusSent]
	want, err := b.sendMessageIDs(ctx)
	if err != nil {
		return run, err
	}
	run.tally = tallyMessages(want, nil, run.scan.ids)
	run.scan.ids = nil // tallied: a million of them need not stay for the DKIM row
	return run, nil
}

// workerCommand is the worker process of part c: `nurture serve --role
// worker` over part c's campaign, configured by its environment as in
// production, with nothing of the bench's own environment but Go's
// runtime settings.
func (b *bench) workerCommand(sink *smtpSink) (*exec.Cmd, error) {
	templates, err := filepath.Abs(b.cfg.TemplatesDir)
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--role", "worker", "--campaigns", filepath.Join(b.dir, "send"), "--templates", templates}
	if b.cfg.Profile != "" {
		args = append(args, "--cpuprofile", filepath.Join(b.cfg.Profile, "part-c-worker.pprof"))
	}
	cmd := exec.Command(b.cfg.Executable, args...)
	cmd.Env = append(runtimeEnv(os.Environ()),
		"DATABASE_URL="+b.cfg.DatabaseURL,
		"REDIS_URL="+b.cfg.RedisURL,
		"SMTP_URL="+sink.url(),
		"SMTP_CONNS="+strconv.Itoa(b.cfg.SMTPConns),
		"WORKER_CONCURRENCY="+strconv.Itoa(b.cfg.Workers),
		"MAIL_FROM="+benchFrom,
		"LOG_LEVEL="+b.cfg.LogLevel,
	)
	cmd.Stdout, cmd.Stderr = indent{b.stderr}, indent{b.stderr}
	return cmd, nil
}

// runtimeEnv is the part of environ that part c's worker inherits: Go's
// runtime settings, which the report's command line repeats.
func runtimeEnv(environ []string) []string {
	var kept []string
	for _, kv := range environ {
		if k, _, _ := strings.Cut(kv, "="); slices.Contains([]string{"GOGC", "GOMEMLIMIT", "GOMAXPROCS", "GODEBUG"}, k) {
			kept = append(kept, kv)
		}
	}
	return kept
}

// stopProcess ends a child process with SIGTERM, as an operator would, and
// waits until it has ended (exited is closed); after 30 seconds it kills
// it.
func stopProcess(p *os.Process, exited <-chan struct{}) {
	select {
	case <-exited:
		return
	default:
	}
	p.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		p.Kill()
		<-exited
	}
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
// for each of the first --sends customers, in batch tasks as serve and
// run-once enqueue them.
func (b *bench) planSends(ctx context.Context) error {
	n := b.cfg.Sends
	b.progress("send: planning %d deliveries", n)
	t := b.send.Rules.Target(benchSendCampaign)
	q := queue.NewClient(b.rdb, queue.Config{Batch: queue.DefaultBatch})
	res, err := planner.New(b.st.Store, b.log).Tick(ctx, b.send.Rules, t, b.cfg.At, q, planner.TickOptions{})
	if err != nil {
		return err
	}
	if res.Planned != n || res.Enqueued != n {
		return fmt.Errorf("the tick planned %d and enqueued %d deliveries, want %d", res.Planned, res.Enqueued, n)
	}
	return nil
}

// replanSends ticks part c's campaign again a day later: the audience is
// unchanged and every customer has had the email (max_sends 1), so the
// tick must plan nothing; its time is what a tick that finds nothing new
// costs.
func (b *bench) replanSends(ctx context.Context) error {
	b.progress("send: the next day's tick over the same audience")
	t := b.send.Rules.Target(benchSendCampaign)
	q := queue.NewClient(b.rdb, queue.Config{Batch: queue.DefaultBatch})
	res, err := planner.New(b.st.Store, b.log).Tick(ctx, b.send.Rules, t, b.cfg.At.Add(24*time.Hour), q, planner.TickOptions{})
	if err != nil {
		return err
	}
	if res.Planned != 0 {
		return fmt.Errorf("the next day's tick planned %d deliveries, want none", res.Planned)
	}
	return nil
}

// errWorkerEnded is waitFinished's error when the worker process ends by
// itself.
var errWorkerEnded = errors.New("the worker process ended before every delivery was finished")

// waitFinished waits until none of the deliveries is planned, queued or
// sending, and returns their number by status. Counting deliveries scans
// the whole table, which would take database time from the worker if done
// often, so it follows the messages in the sink's dump, and asks the
// database only once the sink has every message, or every five seconds. It
// gives up when nothing moves for a minute, or when the worker process
// (exited) ends.
func (b *bench) waitFinished(ctx context.Context, exited <-chan struct{}, dump *dumpCounter, total int) (map[string]int, error) {
	tk := time.NewTicker(100 * time.Millisecond)
	defer tk.Stop()
	last, lastChange, lastPoll := -1, time.Now(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-exited:
			return nil, errWorkerEnded
		case <-tk.C:
		}
		atSink, err := dump.count()
		if err != nil {
			return nil, err
		}
		if atSink < total && time.Since(lastPoll) < 5*time.Second {
			continue
		}
		byStatus, err := b.deliveriesByStatus(ctx)
		if err != nil {
			return nil, err
		}
		done := byStatus[store.StatusSent] + byStatus[store.StatusFailed] + byStatus[store.StatusSkipped]
		if done >= total {
			return byStatus, nil
		}
		if time.Since(lastPoll) >= 5*time.Second {
			fmt.Fprintf(b.stderr, "    %d/%d finished, %d at the sink\n", done, total, atSink)
			lastPoll = time.Now()
		}
		if moved := done + atSink; moved != last {
			last, lastChange = moved, time.Now()
		}
		if time.Since(lastChange) > time.Minute {
			return byStatus, fmt.Errorf("nothing moved for a minute; %d of %d finished, %d at the sink, by status: %v", done, total, atSink, byStatus)
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

// cpuDetail adds the CPU table of part c: CPU per 1,000 deliveries of each
// run, by process, and how busy the machine was; then what the target
// leaves of the machine's CPU per delivery (see cpuBudget), against what
// nurture's run spent. baseRate and rate are the baseline's and nurture's.
func (b *bench) cpuDetail(before, e2e, after sendRun, baseRate, rate float64) {
	n := float64(b.cfg.Sends)
	per := func(d time.Duration) string { return fmt.Sprintf("%.1f", perThousand(d, n)) }
	var rows strings.Builder
	for _, r := range []struct {
		name string
		run  sendRun
	}{{"`smtp-source` → `smtp-sink`, before", before}, {"nurture worker process → `smtp-sink`", e2e}, {"`smtp-source` → `smtp-sink`, after", after}} {
		u := r.run.cpu
		var procs time.Duration
		for _, d := range u.by {
			procs += d
		}
		fmt.Fprintf(&rows, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.name,
			per(u.by[cpuSender]), per(u.by[cpuPostgres]), per(u.by[cpuRedis]), per(u.by[cpuSink]),
			per(procs-u.by[cpuBench]), per(u.by[cpuBench]), per(u.others()),
			u.machine.share(u.machine.busy), u.machine.share(u.others()))
	}
	b.detail(`#### (c) CPU per 1,000 deliveries, in milliseconds

Read from /proc over each run's timed span: utime+stime of each process
(/proc/PID/stat, in ticks of 10 ms), read every 0.5 s so that a process
that ends in between loses at most its last half second. PostgreSQL is
the postmaster, its shared helpers (checkpointer, writers) and the
backends of the benchmark's database, not those of the server's other
databases; Redis is the whole redis-server of the scratch DB (shared
with anything else using that server); smtp-source's is the kernel's
account at its exit (getrusage). "Other processes" is the machine's busy
time (/proc/stat) less the processes of the table: the rest of the
machine, and kernel work charged to no process. The last two columns are
shares of all %d cores over the run.

| Run | Sender | PostgreSQL | Redis | smtp-sink | Sum | Bench process | Other processes | Machine busy | Other processes' share |
|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|
%s
%s`, b.machine.cores, rows.String(), budgetText(b.machine.cores, baseRate, rate, e2e.cpu, n))
}

// perThousand is d, spent on n deliveries, in milliseconds per 1,000.
func perThousand(d time.Duration, n float64) float64 { return d.Seconds() * 1e6 / n }

// cpuBudget is the CPU per 1,000 deliveries, in milliseconds, that part
// c's target leaves on a machine of cores cores: sending at minSourceRatio
// of the baseline's rate with every core busy, every process on the
// machine together may spend no more than that per delivery. Whatever
// the code, a run that spends more per delivery cannot meet the target on
// that machine by arranging its waits better; only the part of its cost
// paid by the second rather than by the delivery (PostgreSQL's background
// writers, timers) would shrink in a faster run.
func cpuBudget(cores int, baseRate float64) float64 {
	return float64(cores) * 1e6 / (minSourceRatio * baseRate)
}

// cpuCeiling is the rate, in deliveries a second, at which processes that
// spend msPer1000 of CPU per 1,000 deliveries keep every one of cores
// cores busy: the most they can send on that machine.
func cpuCeiling(cores int, msPer1000 float64) float64 {
	return float64(cores) * 1e6 / msPer1000
}

// budgetText says what the target leaves of the machine (cpuBudget) and
// what nurture's run spent of it, n deliveries measured by u.
func budgetText(cores int, baseRate, rate float64, u cpuUsage, n float64) string {
	sink := perThousand(u.by[cpuSink], n)
	senders := perThousand(u.by[cpuSender]+u.by[cpuPostgres]+u.by[cpuRedis], n)
	budget, spent := cpuBudget(cores, baseRate), senders+sink
	if baseRate <= 0 || spent <= 0 {
		return "**What the target leaves:** not computed: no baseline rate or no CPU measured.\n"
	}
	ceiling := cpuCeiling(cores, spent)
	left := fmt.Sprintf("Less the sink's share, the target leaves %.1f ms per 1,000 for the\nworker, PostgreSQL and Redis; they spent %.1f.", budget-sink, senders)
	if sink >= budget {
		left = fmt.Sprintf("The sink alone spent more than the whole budget; the worker,\nPostgreSQL and Redis spent %.1f.", senders)
	}
	// Rounded down, as the verdict's ratio is (endToEndMet).
	floor := func(r float64) float64 { return math.Floor(100*r/baseRate) / 100 }
	return fmt.Sprintf(`**What the target leaves.** At %.2f× the baseline's %s messages/s,
the machine's %d cores, every one busy, allow %.1f ms of CPU per 1,000
deliveries for all its processes together. nurture's run spent %.1f in
the worker, PostgreSQL, Redis and the sink (%.1f of it the sink's): at
that cost the machine, every core busy, sends at most %s deliveries/s,
%.2f× the baseline; the run reached %.2f× with the machine %s busy.
%s
`, minSourceRatio, count(baseRate), cores, budget, spent, sink, count(ceiling), floor(ceiling),
		floor(rate), u.machine.share(u.machine.busy), left)
}
