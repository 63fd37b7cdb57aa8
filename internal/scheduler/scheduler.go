// Package scheduler runs campaigns on their cron schedules. One scheduler
// process leads at a time (a PostgreSQL advisory lock); the others wait to
// take over. Ticks are planned by the planner package, so `nurture plan`
// shows what a tick would do.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"nurture/internal/audience"
	"nurture/internal/metrics"
	"nurture/internal/planner"
	"nurture/internal/queue"
	"nurture/internal/store"
)

// LeaderLockKey is the PostgreSQL advisory lock that elects the scheduler.
const LeaderLockKey int64 = 0x6e75727475726531 // "nurture1"

// Config configures a Scheduler. Zero values take the documented defaults.
type Config struct {
	// CatchUp is how far back a fire time missed while no scheduler ran is
	// still planned when a scheduler becomes leader. Older missed fire times
	// are skipped and logged. Default 6h; negative disables catch-up.
	CatchUp time.Duration
	// LeaderPoll is how often a follower tries to become leader, and how
	// often a leader checks it still holds the lock. Default 2s.
	LeaderPoll time.Duration
	// ReconcileEvery is how often the leader re-enqueues deliveries whose
	// task went missing. Default 1m.
	ReconcileEvery time.Duration
	// ReconcileAfter is how long a delivery may stay planned, queued or
	// sending before the reconciler enqueues it again. It must exceed the
	// worker's longest send plus Asynq's lease. Measured by PostgreSQL's
	// clock, so clocks of other hosts do not matter. Default 10m.
	ReconcileAfter time.Duration
	// RedisCheckEvery is how often the leader checks whether Redis lost its
	// data or restarted (queue.Sentinel); when it did, planned and queued
	// deliveries are enqueued again at once. Default 5s.
	RedisCheckEvery time.Duration
	// SendingGrace is how long after Redis lost its data a delivery may stay
	// sending before it is enqueued again: a worker still sending it has
	// recorded an outcome or timed out by then. It must exceed the task
	// timeout (queue.Config.Timeout, 2m by default). Default 3m.
	SendingGrace time.Duration
	// TriggerPoll is how often the leader plans the due entries of
	// triggered campaigns (events and stage entries) and the due steps of
	// journeys, besides the cron ticks of scheduled campaigns. Default 5s;
	// the product promises at most 10s.
	TriggerPoll time.Duration
	// SweepEvery is how often the leader records every customer's stage
	// (the stage sweep that stage triggers read). The leader also sweeps
	// as it takes over. Default 1h.
	SweepEvery time.Duration
	// Tick tunes planning.
	Tick planner.TickOptions
	// Now is the clock; default time.Now. Tests fix it so that fire times
	// (and so occurrences) are known in advance.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.CatchUp == 0 {
		c.CatchUp = 6 * time.Hour
	}
	if c.LeaderPoll <= 0 {
		c.LeaderPoll = 2 * time.Second
	}
	if c.ReconcileEvery <= 0 {
		c.ReconcileEvery = time.Minute
	}
	if c.ReconcileAfter <= 0 {
		c.ReconcileAfter = 10 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.RedisCheckEvery <= 0 {
		c.RedisCheckEvery = 5 * time.Second
	}
	if c.SendingGrace <= 0 {
		c.SendingGrace = 3 * time.Minute
	}
	if c.TriggerPoll <= 0 {
		c.TriggerPoll = 5 * time.Second
	}
	if c.SweepEvery <= 0 {
		c.SweepEvery = time.Hour
	}
	return c
}

// Scheduler plans campaign ticks while it is the leader.
type Scheduler struct {
	cfg      Config
	store    *store.Store
	planner  *planner.Planner
	queue    *queue.Client
	sentinel *queue.Sentinel
	metrics  *metrics.Metrics
	log      *slog.Logger
	now      func() time.Time

	rules  atomic.Pointer[audience.Rules]
	reload chan struct{}
	// mu guards reloadedAt: when the first Reload not yet applied to the
	// cron entries was called (zero: none).
	mu         sync.Mutex
	reloadedAt time.Time
	leader     atomic.Bool
	// fireMu serialises the ticks of cron jobs, and fired holds, per fire
	// time, the campaigns already ticked at it (see fire).
	fireMu sync.Mutex
	fired  map[time.Time]map[string]bool

	cancel context.CancelFunc // set by Start
	done   chan struct{}
}

// New returns a Scheduler running rules.
func New(cfg Config, st *store.Store, q *queue.Client, rules *audience.Rules, m *metrics.Metrics, log *slog.Logger) *Scheduler {
	cfg = cfg.withDefaults()
	s := &Scheduler{
		cfg:      cfg,
		store:    st,
		planner:  planner.New(st, log),
		queue:    q,
		sentinel: queue.NewSentinel(q),
		metrics:  m,
		log:      log,
		now:      cfg.Now,
		reload:   make(chan struct{}, 1),
	}
	s.rules.Store(rules)
	return s
}

// Reload replaces the campaigns. Ticks already running finish with the
// set they started with. The leader keeps the cron entry of every campaign
// whose schedule did not change, so it fires on time, exactly once, with
// the new definition; it replaces the entries of campaigns whose schedule
// changed, starts those of new or re-enabled campaigns and stops the
// others, then plans any fire time of a replaced or new entry that passed
// since Reload was called.
func (s *Scheduler) Reload(rules *audience.Rules) {
	s.mu.Lock()
	if s.reloadedAt.IsZero() {
		s.reloadedAt = s.now()
	}
	s.rules.Store(rules)
	s.mu.Unlock()
	select {
	case s.reload <- struct{}{}:
	default:
	}
}

// IsLeader reports whether this scheduler currently holds the leader lock.
func (s *Scheduler) IsLeader() bool { return s.leader.Load() }

// Start runs the scheduler in the background until Stop or until ctx ends.
func (s *Scheduler) Start(ctx context.Context) error {
	if s.done != nil {
		return errors.New("scheduler already started")
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		s.Run(ctx)
	}()
	return nil
}

// Stop ends the scheduler and waits for running ticks to see it, or for
// ctx to end.
func (s *Scheduler) Stop(ctx context.Context) error {
	if s.done == nil {
		return nil
	}
	s.cancel()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop scheduler: %w", ctx.Err())
	}
}

// Run campaigns until ctx ends: wait to become leader, then run cron
// entries and the reconciler until leadership is lost, and start over.
func (s *Scheduler) Run(ctx context.Context) error {
	for {
		lease, err := s.store.TryLeader(ctx, LeaderLockKey)
		if err != nil && ctx.Err() == nil {
			s.log.Error("leader election failed; retrying", "err", err, "retry_in", s.cfg.LeaderPoll)
		}
		if lease != nil {
			s.lead(ctx, lease)
			lease.Release()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.cfg.LeaderPoll):
		}
	}
}

// lead runs the campaigns while lease holds.
func (s *Scheduler) lead(ctx context.Context, lease *store.Lease) {
	s.leader.Store(true)
	defer s.leader.Store(false)
	s.log.Info("became scheduler leader")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-lease.Lost():
			s.log.Warn("lost scheduler leadership")
			cancel()
		case <-ctx.Done():
		}
	}()

	var wg sync.WaitGroup
	wg.Add(4)
	go func() {
		defer wg.Done()
		s.reconcileLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		s.triggerLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		s.resultsLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		s.sweepLoop(ctx)
	}()

	// Start the cron entries first, then catch up: a fire time passing
	// while catch-up runs is then fired by cron, and one planned by both
	// is planned once (the unique key).
	s.mu.Lock()
	s.reloadedAt = time.Time{} // the entries start from the current set
	s.mu.Unlock()
	c := cron.New(cron.WithLocation(time.UTC), cron.WithLogger(cronLogger{s.log}),
		cron.WithChain(cron.SkipIfStillRunning(cronLogger{s.log})))
	entries := map[string]entry{}
	s.syncEntries(ctx, c, entries)
	c.Start()
	if s.cfg.CatchUp >= 0 {
		s.catchUp(ctx, s.now().Add(-s.cfg.CatchUp), nil)
	}
	for {
		select {
		case <-ctx.Done():
			<-c.Stop().Done() // let running ticks finish (they see ctx ended)
			wg.Wait()
			s.log.Info("scheduler stopped leading")
			return
		case <-s.reload:
			s.mu.Lock()
			since := s.reloadedAt
			s.reloadedAt = time.Time{}
			s.mu.Unlock()
			if since.IsZero() {
				continue // applied already, when this term began
			}
			d := s.syncEntries(ctx, c, entries)
			// A replaced or new entry may have missed a fire time of its
			// schedule since the reload was asked for: plan it.
			if restarted := append(slices.Clone(d.started), d.replaced...); len(restarted) > 0 {
				s.catchUp(ctx, since, restarted)
			}
			s.log.Info("scheduler reloaded campaigns", "campaigns", len(s.rules.Load().Targets()),
				"kept", strings.Join(d.kept, ","), "started", strings.Join(d.started, ","),
				"rescheduled", strings.Join(d.replaced, ","), "stopped", strings.Join(d.stopped, ","))
		}
	}
}

// scheduled reports whether t fires on a schedule: enabled, and not
// triggered (a triggered campaign has no cron; the trigger loop plans it).
func scheduled(t *audience.Target) bool {
	return t.Campaign.Enabled && t.Campaign.Cron != nil && !planner.Triggered(t.Campaign)
}

// entry is the cron entry of one campaign.
type entry struct {
	id       cron.EntryID
	schedule string
}

// entryDiff names the campaigns whose entries syncEntries kept, started,
// replaced (a new schedule) and stopped.
type entryDiff struct {
	kept, started, replaced, stopped []string
}

// syncEntries makes the entries of c follow the current set: one entry per
// enabled scheduled campaign. An entry whose schedule is unchanged is left
// alone, so it neither misses nor repeats a fire time.
func (s *Scheduler) syncEntries(ctx context.Context, c *cron.Cron, entries map[string]entry) entryDiff {
	var d entryDiff
	want := map[string]*audience.Target{}
	for _, t := range s.rules.Load().Targets() {
		if scheduled(t) {
			want[t.Campaign.Name] = t
		}
	}
	for name, e := range entries {
		t := want[name]
		if t != nil && t.Campaign.Schedule == e.schedule {
			d.kept = append(d.kept, name)
			continue
		}
		c.Remove(e.id) // a tick it started goes on with its own set
		delete(entries, name)
		if t == nil {
			d.stopped = append(d.stopped, name)
		} else {
			d.replaced = append(d.replaced, name)
		}
	}
	for name, t := range want {
		if _, ok := entries[name]; ok {
			continue
		}
		entries[name] = entry{id: c.Schedule(t.Campaign.Cron, s.job(ctx, name, t.Campaign.Schedule, t.Campaign.Cron)),
			schedule: t.Campaign.Schedule}
		if !slices.Contains(d.replaced, name) {
			d.started = append(d.started, name)
		}
	}
	for _, l := range []*[]string{&d.kept, &d.started, &d.replaced, &d.stopped} {
		slices.Sort(*l)
	}
	return d
}

// job is the cron job of campaign name on schedule spec. It ticks with the
// set current at its fire time, and only while that set gives the campaign
// the same schedule: an entry about to be replaced by a reload leaves the
// fire times to its successor.
func (s *Scheduler) job(ctx context.Context, name, spec string, sched cron.Schedule) cron.Job {
	var last time.Time
	return cron.FuncJob(func() {
		rules := s.rules.Load()
		t := rules.Target(name)
		if t == nil || !t.Campaign.Enabled || t.Campaign.Schedule != spec {
			return
		}
		// cron does not tell a job its fire time; the fire time is the
		// latest one not after now, which is stable to the second.
		at := latestFire(sched, s.now(), last)
		last = at
		s.fire(ctx, rules, name, at)
	})
}

// fire ticks, at the fire time at, every enabled scheduled campaign that
// fires then, name among them, in descending priority and then name
// order, so that under the global frequency cap the higher priority takes
// a customer's last slot whichever cron job went off first. The other
// jobs of the same instant then find their campaign ticked and return.
func (s *Scheduler) fire(ctx context.Context, rules *audience.Rules, name string, at time.Time) {
	s.fireMu.Lock()
	defer s.fireMu.Unlock()
	done := s.firedAt(at)
	if done[name] {
		return
	}
	for _, t := range planner.ByPriority(rules.Targets()) {
		c := t.Campaign
		due := c.Name == name ||
			c.Enabled && c.Cron != nil && c.Trigger == nil && c.Cron.Next(at.Add(-time.Second)).Equal(at)
		if !due || done[c.Name] {
			continue
		}
		done[c.Name] = true
		s.tick(ctx, rules, c.Name, at)
	}
}

// firedAt returns the campaigns ticked at the fire time at, forgetting
// fire times more than a day older. The caller holds fireMu.
func (s *Scheduler) firedAt(at time.Time) map[string]bool {
	if s.fired == nil {
		s.fired = map[time.Time]map[string]bool{}
	}
	for t := range s.fired {
		if t.Before(at.Add(-24 * time.Hour)) {
			delete(s.fired, t)
		}
	}
	done := s.fired[at]
	if done == nil {
		done = map[string]bool{}
		s.fired[at] = done
	}
	return done
}

// latestFire returns the latest fire time of sched not after now and after
// prev (if set). Fire times are whole seconds.
func latestFire(sched cron.Schedule, now, prev time.Time) time.Time {
	now = now.UTC()
	from := now.Add(-time.Minute)
	if !prev.IsZero() && prev.After(from) {
		from = prev
	}
	at := now.Truncate(time.Second)
	for t := sched.Next(from); !t.After(now); t = sched.Next(t) {
		at = t
	}
	return at
}

// tick plans one campaign at one fire time; errors are logged, and what was
// not enqueued is left to the reconciler.
func (s *Scheduler) tick(ctx context.Context, rules *audience.Rules, name string, at time.Time) {
	t := rules.Target(name)
	if t == nil || ctx.Err() != nil {
		return
	}
	start := time.Now()
	res, err := s.planner.Tick(ctx, rules, t, at, s.queue, s.cfg.Tick)
	s.metrics.Ticked(name, res.Planned, time.Since(start))
	log := s.log.With("campaign", name, "occurrence", at.Format(time.RFC3339),
		"candidates", res.Candidates, "matched", res.Matched, "planned", res.Planned,
		"enqueued", res.Enqueued, "took", time.Since(start).Round(time.Millisecond))
	if err != nil {
		log.Error("tick failed; unenqueued deliveries are left to the reconciler", "err", err)
		return
	}
	log.Info("tick done")
}

// catchUp plans, for each enabled campaign (or only those named in only,
// when not nil), its latest fire time after since that is not after now:
// a fire time missed while no scheduler led (since = now - CatchUp) or
// while a reload replaced entries. Planning is idempotent, so a fire time
// that was in fact planned creates nothing new.
func (s *Scheduler) catchUp(ctx context.Context, since time.Time, only []string) {
	rules := s.rules.Load()
	now := s.now().UTC()
	type fire struct {
		name string
		at   time.Time
	}
	var fires []fire // in priority order, then sorted by time below
	for _, t := range planner.ByPriority(rules.Targets()) {
		if !scheduled(t) {
			continue
		}
		if only != nil && !slices.Contains(only, t.Campaign.Name) {
			continue
		}
		var missed time.Time
		for f := t.Campaign.Cron.Next(since); !f.After(now); f = t.Campaign.Cron.Next(f) {
			missed = f
		}
		if !missed.IsZero() {
			fires = append(fires, fire{t.Campaign.Name, missed})
		}
	}
	// Fire times in order; at one instant, campaigns in priority order.
	slices.SortStableFunc(fires, func(a, b fire) int { return a.at.Compare(b.at) })
	for _, f := range fires {
		if ctx.Err() != nil {
			return
		}
		s.fireMu.Lock()
		if done := s.firedAt(f.at); !done[f.name] {
			done[f.name] = true
			s.log.Info("catching up the latest fire time", "campaign", f.name, "occurrence", f.at.Format(time.RFC3339))
			s.tick(ctx, rules, f.name, f.at)
		}
		s.fireMu.Unlock()
	}
}

// cronLogger routes cron's logs, notably fires skipped because the
// previous tick of the same campaign still runs, to slog.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) {
	if msg == "skip" {
		c.l.Warn("fire time skipped: the previous tick of this campaign is still running", kv...)
		return
	}
	c.l.Debug("cron: "+msg, kv...)
}

func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "err", err)...)
}

func (s *Scheduler) reconcileLoop(ctx context.Context) {
	tk := time.NewTicker(s.cfg.ReconcileEvery)
	defer tk.Stop()
	check := time.NewTicker(s.cfg.RedisCheckEvery)
	defer check.Stop()
	var grace <-chan time.Time // after a loss: when sending deliveries are due
	redisDown := false
	s.reconcileOnce(ctx, nil)
	for {
		select {
		case <-ctx.Done():
			return
		case <-check.C:
			loss, err := s.sentinel.Check(ctx)
			if err != nil {
				if ctx.Err() == nil && !redisDown {
					s.log.Warn("Redis unavailable; retrying", "err", err)
				}
				s.metrics.InfraError("redis", "check")
				redisDown = true
				continue
			}
			if redisDown {
				s.log.Info("Redis available again")
				redisDown = false
			}
			switch loss {
			case queue.NoLoss:
				continue
			case queue.NewLoss:
				s.metrics.InfraError("redis", "data_lost")
				s.log.Warn("Redis lost its data (or nurture has not used this Redis before); enqueueing unfinished deliveries again now",
					"sending_after", s.cfg.SendingGrace)
			case queue.PendingLoss:
				s.log.Info("resuming the recovery of a Redis data loss")
			}
			if err := s.reconcileOnce(ctx, func(ctx context.Context, limit int) ([]store.DeliveryRef, error) {
				return s.store.UnfinishedAfterLoss(ctx, s.cfg.SendingGrace, limit)
			}); err != nil {
				continue // still pending: the next check tries again
			}
			if err := s.sentinel.Recovered(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("could not mark the Redis loss recovered; the next check recovers again", "err", err)
			}
			grace = time.After(s.cfg.SendingGrace)
			continue
		case <-grace:
			grace = nil
			s.reconcileOnce(ctx, func(ctx context.Context, limit int) ([]store.DeliveryRef, error) {
				return s.store.UnfinishedAfterLoss(ctx, s.cfg.SendingGrace, limit)
			})
			continue
		case <-tk.C:
		}
		s.reconcileOnce(ctx, nil)
	}
}

// reconcileOnce registers the queues and reconciles the deliveries list
// returns (nil: the regular sweep), logging the result.
func (s *Scheduler) reconcileOnce(ctx context.Context, list func(context.Context, int) ([]store.DeliveryRef, error)) error {
	if err := s.queue.Register(ctx, s.queues()); err != nil {
		if ctx.Err() == nil {
			s.log.Error("register queues", "err", err)
		}
		return err
	}
	if list == nil {
		list = func(ctx context.Context, limit int) ([]store.DeliveryRef, error) {
			return s.store.Unfinished(ctx, s.cfg.ReconcileAfter, limit)
		}
	}
	n, err := s.reconcile(ctx, list)
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Error("reconcile failed", "err", err)
	case n > 0:
		s.log.Info("re-enqueued deliveries whose task was missing", "count", n)
	}
	return err
}

// detachOrphans splits refs into those to enqueue on their own tasks and
// the ids of those a batch task that still exists carries (left alone).
// Deliveries whose batch task is gone are detached from it first, so that
// their own tasks can claim them; one that batch claimed in the meantime
// (it was not gone after all: a dashboard run, or a worker running it when
// Redis lost it) is left to it, unless idle for SendingGrace.
func (s *Scheduler) detachOrphans(ctx context.Context, refs []queue.Ref) (own []queue.Ref, carried []string, err error) {
	live, err := s.queue.Live(ctx, refs)
	if err != nil {
		return nil, nil, err
	}
	var ids, tasks []string
	orphans := map[string]queue.Ref{}
	for _, r := range refs {
		switch {
		case r.Task == "":
			own = append(own, r)
		case live[r.Task]:
			carried = append(carried, r.ID)
		default:
			ids, tasks = append(ids, r.ID), append(tasks, r.Task)
			r.Task = ""
			orphans[strings.ToLower(r.ID)] = r
		}
	}
	if len(ids) > 0 {
		detached, err := s.store.Detach(ctx, ids, tasks, s.cfg.SendingGrace)
		if err != nil {
			return nil, nil, err
		}
		for _, id := range detached {
			own = append(own, orphans[id])
		}
	}
	return own, carried, nil
}

// queues lists the queues of the current campaigns.
func (s *Scheduler) queues() []string {
	var qs []string
	for _, t := range s.rules.Load().Targets() {
		if !slices.Contains(qs, t.Campaign.Queue) {
			qs = append(qs, t.Campaign.Queue)
		}
	}
	return qs
}

// Reconcile enqueues again every delivery left planned, queued or sending
// for longer than ReconcileAfter. Deliveries whose task is still in Redis
// meet a TaskID conflict and are left alone; the others (Redis lost them,
// or the process died between commit and enqueue) are enqueued anew. The
// worker's claim makes a second task for a finished delivery harmless.
// It returns how many deliveries it handed to the queue.
func (s *Scheduler) Reconcile(ctx context.Context) (int, error) {
	return s.reconcile(ctx, func(ctx context.Context, limit int) ([]store.DeliveryRef, error) {
		return s.store.Unfinished(ctx, s.cfg.ReconcileAfter, limit)
	})
}

func (s *Scheduler) reconcile(ctx context.Context, list func(context.Context, int) ([]store.DeliveryRef, error)) (int, error) {
	const page = 1000
	total := 0
	seen := map[string]bool{}
	for ctx.Err() == nil {
		refs, err := list(ctx, page)
		if err != nil {
			return total, fmt.Errorf("list unfinished deliveries: %w", err)
		}
		qrefs := make([]queue.Ref, 0, len(refs))
		for _, r := range refs {
			if !seen[r.ID] {
				seen[r.ID] = true
				qrefs = append(qrefs, queue.Ref{ID: r.ID, Queue: r.Queue, SendAt: r.SendAt, Campaign: r.Campaign, Task: r.Task})
			}
		}
		if len(qrefs) == 0 {
			return total, nil
		}
		own, carried, err := s.detachOrphans(ctx, qrefs)
		if err != nil {
			return total, err
		}
		done, err := s.queue.Requeue(ctx, own)
		done = append(done, carried...)
		total += len(done)
		if len(done) > 0 {
			if merr := s.store.Touch(ctx, done); merr != nil {
				err = errors.Join(err, merr)
			}
		}
		if err != nil {
			return total, err
		}
	}
	return total, ctx.Err()
}
