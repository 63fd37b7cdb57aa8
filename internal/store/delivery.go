package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"nurture/internal/audience"
	"nurture/internal/freqcap"
)

// Delivery statuses. A delivery moves planned → queued → sending → sent, or
// ends failed or skipped. StatusRetry is only an Outcome: the delivery goes
// back to queued.
const (
	StatusPlanned = "planned"
	StatusQueued  = "queued"
	StatusSending = "sending"
	StatusSent    = "sent"
	StatusFailed  = "failed"
	StatusSkipped = "skipped"
	// StatusHeldOut is an experiment's holdout: recorded, never sent.
	StatusHeldOut = "held_out"
	StatusRetry   = "retry"
)

// insertBatch is the most deliveries InsertDeliveries writes per statement.
const insertBatch = 5000

// NewDelivery is a delivery the planner decided on.
type NewDelivery struct {
	Campaign   string
	CustomerID string
	// Occurrence is the entry's start time: the cron fire time, or a
	// trigger's due time.
	Occurrence time.Time
	Stage      string // the customer's stage when it was planned
	Template   string
	Queue      string
	// Step is the journey step, 1 for a single email (0 is taken as 1).
	Step int
	// EventID is the triggering event's id, "" without one.
	EventID string
	// Variant is the experiment group: a variant, "holdout" or "".
	Variant string
	// SendAt is when it may be sent; zero means Occurrence.
	SendAt time.Time
	// Status is StatusPlanned (also when empty), StatusHeldOut, or
	// StatusSkipped with a Reason. InsertDeliveries may turn a planned
	// delivery into a skipped one under the frequency cap.
	Status string
	Reason string
}

// DeliveryRef names a delivery, the queue its task goes to and when it may
// be sent.
type DeliveryRef struct {
	ID     string // uuid, canonical text form
	Queue  string
	SendAt time.Time
	// Occurrence is the entry's start time; set by PlanDeliveries only.
	Occurrence time.Time
	// Campaign is the delivery's campaign.
	Campaign string
	// Task is the id of the batch task that carries the delivery, "" for
	// its own task (whose TaskID is the delivery id); set by Unfinished
	// and UnfinishedAfterLoss.
	Task string
}

// Inserted is what InsertDeliveries did.
type Inserted struct {
	// Planned are the new deliveries to enqueue.
	Planned []DeliveryRef
	// HeldOut and Capped count new rows born held out, and skipped by the
	// frequency cap; Skipped counts those the caller planned skipped.
	HeldOut, Capped, Skipped int
}

// New is how many rows were created.
func (in Inserted) New() int { return len(in.Planned) + in.HeldOut + in.Capped + in.Skipped }

// capLockKey is the advisory lock that serialises inserts under the
// global frequency cap ("nurture cap" in ASCII).
const capLockKey = 0x6e75727475726563

// InsertDeliveries is PlanDeliveries without a frequency cap, returning
// the new planned deliveries.
func (s *Store) InsertDeliveries(ctx context.Context, ds []NewDelivery) ([]DeliveryRef, error) {
	in, err := s.PlanDeliveries(ctx, ds, freqcap.Cap{})
	return in.Planned, err
}

// PlanDeliveries inserts ds and reports what it created. A delivery that
// exists for the same campaign, customer, occurrence, step and event is
// left alone and not counted, so planning the same tick twice creates
// nothing the second time; so is a second entry of one campaign from one
// event.
//
// With a cap that is on, each planned delivery is checked, in the order of
// ds, against the customer's deliveries planned, queued, sending or sent
// (and those before it in ds), under a lock that every capped insert takes:
// concurrent ticks in any number of processes cannot exceed the cap. A
// capped delivery is recorded skipped with reason freqcap.Reason. Held-out
// deliveries neither count nor are capped.
func (s *Store) PlanDeliveries(ctx context.Context, ds []NewDelivery, cp freqcap.Cap) (Inserted, error) {
	var in Inserted
	for len(ds) > 0 {
		batch := ds[:min(len(ds), insertBatch)]
		ds = ds[len(batch):]
		got, err := s.insertBatch(ctx, batch, cp)
		if err != nil {
			return in, fmt.Errorf("insert deliveries: %w", err)
		}
		in.Planned = append(in.Planned, got.Planned...)
		in.HeldOut += got.HeldOut
		in.Capped += got.Capped
		in.Skipped += got.Skipped
	}
	return in, nil
}

// insertBatch writes one batch in one transaction and reports what it
// created once that has committed.
func (s *Store) insertBatch(ctx context.Context, batch []NewDelivery, cp freqcap.Cap) (Inserted, error) {
	var got Inserted
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		got, err = s.insertTx(ctx, tx, batch, cp)
		return err
	})
	if err != nil {
		return Inserted{}, err
	}
	return got, nil
}

// insertTx inserts batch in tx, under the cap.
func (s *Store) insertTx(ctx context.Context, tx pgx.Tx, batch []NewDelivery, cp freqcap.Cap) (Inserted, error) {
	var got Inserted
	if len(batch) == 0 {
		return got, nil
	}
	n := len(batch)
	var (
		campaigns   = make([]string, n)
		customers   = make([]string, n)
		occurrences = make([]time.Time, n)
		stages      = make([]string, n)
		templates   = make([]string, n)
		queues      = make([]string, n)
		steps       = make([]int32, n)
		events      = make([]string, n)
		variants    = make([]string, n)
		sendAts     = make([]time.Time, n)
		statuses    = make([]string, n)
		reasons     = make([]string, n)
	)
	for i, d := range batch {
		campaigns[i], customers[i], occurrences[i] = d.Campaign, d.CustomerID, d.Occurrence
		stages[i], templates[i], queues[i] = d.Stage, d.Template, d.Queue
		steps[i], events[i], variants[i] = int32(max(d.Step, 1)), d.EventID, d.Variant
		sendAts[i], statuses[i], reasons[i] = d.SendAt, cmp.Or(d.Status, StatusPlanned), d.Reason
		if sendAts[i].IsZero() {
			sendAts[i] = d.Occurrence
		}
	}
	if cp.On() {
		if err := s.applyCap(ctx, tx, cp, customers, sendAts, statuses, reasons); err != nil {
			return got, err
		}
	}
	rows, err := tx.Query(ctx, s.q.get(qInsertDeliveries), campaigns, customers, occurrences, stages, templates, queues,
		steps, events, variants, sendAts, statuses, reasons)
	if err != nil {
		return got, err
	}
	var (
		ref            DeliveryRef
		status, reason string
	)
	_, err = pgx.ForEachRow(rows, []any{&ref.ID, &ref.Queue, &ref.SendAt, &ref.Occurrence, &status, &reason, &ref.Campaign}, func() error {
		switch {
		case status == StatusPlanned:
			ref.SendAt = ref.SendAt.UTC()
			ref.Occurrence = ref.Occurrence.UTC()
			got.Planned = append(got.Planned, ref)
		case status == StatusHeldOut:
			got.HeldOut++
		case status == StatusSkipped && reason == freqcap.Reason:
			got.Capped++
		default:
			got.Skipped++
		}
		return nil
	})
	return got, err
}

// applyCap takes the cap lock, reads the customers' counted sends and
// turns the planned deliveries the cap refuses into skipped ones, in order.
func (s *Store) applyCap(ctx context.Context, tx pgx.Tx, cp freqcap.Cap, customers []string, sendAts []time.Time, statuses, reasons []string) error {
	if _, err := tx.Exec(ctx, s.q.get(qCapLock), int64(capLockKey)); err != nil {
		return fmt.Errorf("frequency cap lock: %w", err)
	}
	var planned []time.Time
	var who []string
	for i, st := range statuses {
		if st == StatusPlanned {
			planned = append(planned, sendAts[i])
			who = append(who, customers[i])
		}
	}
	if len(planned) == 0 {
		return nil
	}
	from, to := cp.Range(planned)
	ledger, err := s.capLedger(ctx, tx, who, from, to)
	if err != nil {
		return err
	}
	for i, st := range statuses {
		if st == StatusPlanned && !ledger.Decide(cp, customers[i], sendAts[i]) {
			statuses[i], reasons[i] = StatusSkipped, freqcap.Reason
		}
	}
	return nil
}

// CapLedger returns the send times that count toward the frequency cap of
// the given customers, within (from, to).
func (s *Store) CapLedger(ctx context.Context, customers []string, from, to time.Time) (freqcap.Ledger, error) {
	return s.capLedger(ctx, s.pool, customers, from, to)
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func (s *Store) capLedger(ctx context.Context, db querier, customers []string, from, to time.Time) (freqcap.Ledger, error) {
	rows, err := db.Query(ctx, s.q.get(qCapSends), slices.Compact(slices.Sorted(slices.Values(customers))), from, to)
	if err != nil {
		return nil, fmt.Errorf("frequency cap: %w", err)
	}
	ledger := freqcap.Ledger{}
	var (
		id string
		at time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &at}, func() error {
		ledger[id] = append(ledger[id], at)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("frequency cap: %w", err)
	}
	return ledger, nil
}

// MarkQueued moves the deliveries ids that are still planned to queued,
// each on its own task.
func (s *Store) MarkQueued(ctx context.Context, ids []string) error {
	return s.MarkQueuedBy(ctx, ids, nil)
}

// MarkQueuedBy is MarkQueued for deliveries enqueued in batch tasks:
// tasks[i] is the id of the task that carries ids[i], "" for its own. A
// nil tasks means every delivery's own task.
func (s *Store) MarkQueuedBy(ctx context.Context, ids, tasks []string) error {
	ids, tasks = validPairs(ids, tasks)
	if _, err := s.pool.Exec(ctx, s.q.get(qMarkQueued), ids, tasks); err != nil {
		return fmt.Errorf("mark %d deliveries queued: %w", len(ids), err)
	}
	return nil
}

// validPairs drops the ids that are not UUIDs and their tasks; a nil
// tasks reads as "" for every id.
func validPairs(ids, tasks []string) (vids, vtasks []string) {
	vids, vtasks = make([]string, 0, len(ids)), make([]string, 0, len(ids))
	for i, id := range ids {
		if !isUUID(id) {
			continue
		}
		t := ""
		if tasks != nil {
			t = strings.ToLower(tasks[i])
		}
		vids, vtasks = append(vids, strings.ToLower(id)), append(vtasks, t)
	}
	return vids, vtasks
}

// Detach gives unfinished deliveries back to their own tasks: tasks[i] is
// the batch task that carried ids[i] when they were listed, and is gone.
// A delivery that batch no longer carries is left alone, and so is one it
// is sending, unless that has been idle for sendingIdle. It returns the
// ids detached, for which the caller enqueues own tasks.
func (s *Store) Detach(ctx context.Context, ids, tasks []string, sendingIdle time.Duration) ([]string, error) {
	ids, tasks = validPairs(ids, tasks)
	rows, err := s.pool.Query(ctx, s.q.get(qDetach), ids, tasks, sendingIdle)
	if err != nil {
		return nil, fmt.Errorf("detach %d deliveries from their batch: %w", len(ids), err)
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("detach %d deliveries from their batch: %w", len(ids), err)
	}
	return done, nil
}

// Touch records that the reconciler enqueued ids again: planned ones become
// queued, and every unfinished one gets a new updated_at, so Unfinished
// leaves it alone for a while.
func (s *Store) Touch(ctx context.Context, ids []string) error {
	if _, err := s.pool.Exec(ctx, s.q.get(qTouch), validUUIDs(ids)); err != nil {
		return fmt.Errorf("touch %d deliveries: %w", len(ids), err)
	}
	return nil
}

// ActiveQueues lists, sorted, the queues of deliveries not yet sent,
// failed or skipped.
func (s *Store) ActiveQueues(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, s.q.get(qActiveQueues))
	if err != nil {
		return nil, fmt.Errorf("active queues: %w", err)
	}
	qs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("active queues: %w", err)
	}
	return qs, nil
}

// Unfinished returns up to limit deliveries in status planned, queued or
// sending that have not changed for idle, by the database's clock (so that
// clocks of other hosts do not matter), least recently changed first.
func (s *Store) Unfinished(ctx context.Context, idle time.Duration, limit int) ([]DeliveryRef, error) {
	return s.refs(ctx, "unfinished deliveries", qUnfinished, idle, limit)
}

// UnfinishedAfterLoss is Unfinished for after Redis lost its data: every
// planned or queued delivery whatever its age, and sending ones unchanged
// for sendingIdle.
func (s *Store) UnfinishedAfterLoss(ctx context.Context, sendingIdle time.Duration, limit int) ([]DeliveryRef, error) {
	return s.refs(ctx, "unfinished deliveries", qUnfinishedAfterLoss, sendingIdle, limit)
}

func (s *Store) refs(ctx context.Context, what, query string, args ...any) ([]DeliveryRef, error) {
	rows, err := s.pool.Query(ctx, s.q.get(query), args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	refs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeliveryRef, error) {
		var ref DeliveryRef
		err := r.Scan(&ref.ID, &ref.Queue, &ref.SendAt, &ref.Campaign, &ref.Task)
		return ref, err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	for i := range refs {
		refs[i].SendAt = refs[i].SendAt.UTC()
	}
	return refs, nil
}

// Claim is a worker's claim on one delivery.
type Claim struct {
	ID         string
	Campaign   string
	Occurrence time.Time
	Stage      string
	Template   string
	Step       int
	EventID    string
	Variant    string
	SendAt     time.Time
	// Status is "sending" when Claimed, the delivery's final status when
	// it was already finished, and "" when there is no such delivery.
	Status   string
	Attempts int // including this one when Claimed
	Claimed  bool
	// Customer is the customer as it is now, with Suppressed set; only
	// loaded when Claimed. CustomerFound is false when the customer no
	// longer exists (Customer.ID is still the delivery's customer id).
	Customer      audience.Customer
	CustomerFound bool
}

// Claim moves each delivery of ids that is planned, queued or sending to
// sending, counting an attempt, and returns one Claim per id in the order
// of ids: one round trip when every one is claimed, a second one to read
// the others. A delivery already sent, failed or skipped is returned
// unclaimed with its status, so a duplicate task acknowledges
// without sending. A delivery left in sending by a worker that died is
// claimed again: the queue hands a task out twice only after its lease.
//
// Claim claims for the deliveries' own tasks; a delivery carried by a
// batch task is returned unclaimed with its status (see ClaimBy).
func (s *Store) Claim(ctx context.Context, ids []string) ([]Claim, error) {
	return s.ClaimBy(ctx, ids, nil)
}

// ClaimBy is Claim on behalf of tasks: tasks[i] is the id of the task
// claiming ids[i], "" (or a nil tasks) for the delivery's own task. Only
// the task the delivery's row names may claim it, so a delivery handed
// from a batch to a task of its own is never sent by both.
func (s *Store) ClaimBy(ctx context.Context, ids, tasks []string) ([]Claim, error) {
	claims := make([]Claim, len(ids))
	for i, id := range ids {
		claims[i].ID = id
	}
	// In id order, so that concurrent claims lock rows in one order.
	type in struct {
		id, owner string
		index     int // in ids
	}
	var input []in
	for i, id := range ids {
		if isUUID(id) {
			owner := id
			if tasks != nil && tasks[i] != "" {
				owner = tasks[i]
			}
			input = append(input, in{strings.ToLower(id), strings.ToLower(owner), i})
		}
	}
	if len(input) == 0 {
		return claims, nil
	}
	slices.SortFunc(input, func(a, b in) int { return strings.Compare(a.id, b.id) })
	sortedIDs, sortedOwners, index := make([]string, len(input)), make([]string, len(input)), make([]int, len(input))
	for i, x := range input {
		sortedIDs[i], sortedOwners[i], index[i] = x.id, x.owner, x.index
	}
	rows, err := s.pool.Query(ctx, s.q.get(qClaim), sortedIDs, sortedOwners)
	if err != nil {
		return nil, fmt.Errorf("claim %d deliveries: %w", len(ids), err)
	}
	claimed := make([]bool, len(input))
	var r claimRow
	dest := r.claimedDest()
	_, err = pgx.ForEachRow(rows, dest, func() error {
		if r.ord < 1 || int(r.ord) > len(index) || claimed[r.ord-1] {
			return fmt.Errorf("unexpected row %d", r.ord)
		}
		claimed[r.ord-1] = true
		cl := &claims[index[r.ord-1]]
		r.delivery(cl)
		cl.Status, cl.Claimed, cl.CustomerFound = StatusSending, true, r.found
		if !r.found {
			cl.Customer = audience.Customer{ID: r.customerID}
			return nil
		}
		cl.Customer = audience.Customer{
			ID: r.customerID, Email: r.email, FirstName: r.firstName, Timezone: r.timezone,
			Subscribed: r.subscribed, Suppressed: r.suppressed,
			CreatedAt: r.createdAt.Time.UTC(), LastActiveAt: r.lastActiveAt.Time.UTC(),
			OrdersCount: int(r.ordersCount), TotalSpent: r.totalSpent,
			FirstPurchaseAt: timePtr(r.firstPurchaseAt), LastPurchaseAt: timePtr(r.lastPurchaseAt),
		}
		var err error
		if cl.Customer.Attributes, err = decodeAttributes(r.attributes, false); err != nil {
			return fmt.Errorf("delivery %s: customer %q: %w", cl.ID, r.customerID, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	var rest []string
	var restIndex []int
	for i, ok := range claimed {
		if !ok {
			rest = append(rest, sortedIDs[i])
			restIndex = append(restIndex, index[i])
		}
	}
	if len(rest) == 0 {
		return claims, nil
	}
	// The rest, as they are now: finished, carried by another task, or
	// gone (status "").
	rows, err = s.pool.Query(ctx, s.q.get(qClaimUnclaimed), rest)
	if err != nil {
		return nil, fmt.Errorf("read %d unclaimed deliveries: %w", len(rest), err)
	}
	_, err = pgx.ForEachRow(rows, r.unclaimedDest(), func() error {
		if r.ord < 1 || int(r.ord) > len(restIndex) {
			return fmt.Errorf("unexpected row %d", r.ord)
		}
		cl := &claims[restIndex[r.ord-1]]
		r.delivery(cl)
		cl.Status = r.status
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read unclaimed deliveries: %w", err)
	}
	return claims, nil
}

// claimRow is one row of the claim query, or of claim-unclaimed.
type claimRow struct {
	ord             int32
	campaign        string
	occurrence      pgtype.Timestamptz
	stage           string
	template        string
	step            int32
	eventID         string
	variant         string
	sendAt          pgtype.Timestamptz
	status          string
	attempts        int32
	found           bool
	customerID      string
	email           string
	firstName       string
	timezone        string
	subscribed      bool
	createdAt       pgtype.Timestamptz
	attributes      []byte // JSON text
	ordersCount     int32
	totalSpent      float64
	firstPurchaseAt pgtype.Timestamptz
	lastPurchaseAt  pgtype.Timestamptz
	lastActiveAt    pgtype.Timestamptz
	suppressed      bool
}

// claimedDest is where the columns of a claim row go, in query order.
func (r *claimRow) claimedDest() []any {
	return []any{&r.ord, &r.campaign, &r.occurrence, &r.stage, &r.template, &r.step, &r.eventID, &r.variant,
		&r.sendAt, &r.attempts, &r.found, &r.customerID, &r.email, &r.firstName, &r.timezone, &r.subscribed,
		&r.createdAt, &r.attributes, &r.ordersCount, &r.totalSpent, &r.firstPurchaseAt, &r.lastPurchaseAt,
		&r.lastActiveAt, &r.suppressed}
}

// unclaimedDest is where the columns of a claim-unclaimed row go.
func (r *claimRow) unclaimedDest() []any {
	return []any{&r.ord, &r.campaign, &r.occurrence, &r.stage, &r.template, &r.step, &r.eventID, &r.variant,
		&r.sendAt, &r.status, &r.attempts}
}

// delivery copies the delivery's own columns into cl.
func (r *claimRow) delivery(cl *Claim) {
	cl.Campaign, cl.Stage, cl.Template = r.campaign, r.stage, r.template
	cl.Attempts, cl.Step, cl.EventID, cl.Variant = int(r.attempts), int(r.step), r.eventID, r.variant
	if r.occurrence.Valid {
		cl.Occurrence = r.occurrence.Time.UTC()
	}
	if r.sendAt.Valid {
		cl.SendAt = r.sendAt.Time.UTC()
	}
}

// Outcome is what became of a claimed delivery.
type Outcome struct {
	ID string
	// Campaign is the delivery's campaign, for the caller's bookkeeping;
	// Record does not use it.
	Campaign string
	Status   string // StatusSent, StatusFailed, StatusSkipped or StatusRetry
	// Reason says why a delivery was skipped or failed.
	Reason string
	// Error is the last error met; kept on retry and failure.
	Error string
	// MessageID is the Message-ID header of the email, when one was built.
	MessageID string
	// Reply is the SMTP server's reply when it accepted the message.
	Reply string
	// Attempt is the Claim's Attempts this outcome answers. When set, the
	// outcome applies only while no later claim took the delivery over, so
	// a slow attempt cannot overwrite a newer one. Zero applies to any
	// attempt.
	Attempt int
	// SentAt is when the server accepted the message, by the sender's
	// clock; the zero time means the time it is recorded. Attribution
	// counts from it.
	SentAt time.Time
}

// Record applies outcomes in one round trip. Only deliveries in status
// sending change: a delivery already finished is never changed again, so a
// late or duplicate report cannot downgrade a sent one. sent sets sent_at,
// message_id and smtp_reply; failed sets failed_at, reason and last_error;
// skipped sets skipped_at and reason; retry moves the delivery back to
// queued (queued_at = now) with its last_error. Empty fields leave the
// stored value as it is. It returns the ids whose outcome was not applied:
// finished already, taken over by a later attempt, or unknown.
func (s *Store) Record(ctx context.Context, outs []Outcome) (stale []string, err error) {
	n := len(outs)
	var (
		ids      = make([]string, 0, n)
		statuses = make([]string, 0, n)
		reasons  = make([]string, 0, n)
		errs     = make([]string, 0, n)
		msgIDs   = make([]string, 0, n)
		replies  = make([]string, 0, n)
		attempts = make([]int32, 0, n)
		sentAts  = make([]*time.Time, 0, n)
	)
	outs = slices.Clone(outs)
	slices.SortFunc(outs, func(a, b Outcome) int { return strings.Compare(strings.ToLower(a.ID), strings.ToLower(b.ID)) })
	for _, o := range outs {
		switch o.Status {
		case StatusSent, StatusFailed, StatusSkipped, StatusRetry:
		default:
			return nil, fmt.Errorf("record delivery %s: unknown outcome %q", o.ID, o.Status)
		}
		if !isUUID(o.ID) {
			stale = append(stale, o.ID) // no such delivery
			continue
		}
		ids, statuses, reasons = append(ids, o.ID), append(statuses, o.Status), append(reasons, clean(o.Reason))
		errs, msgIDs, replies = append(errs, clean(o.Error)), append(msgIDs, clean(o.MessageID)), append(replies, clean(o.Reply))
		attempts = append(attempts, int32(o.Attempt))
		var at *time.Time
		if !o.SentAt.IsZero() {
			at = &o.SentAt
		}
		sentAts = append(sentAts, at)
	}
	if len(ids) == 0 {
		return stale, nil
	}
	return s.applyByID(ctx, fmt.Sprintf("record %d delivery outcomes", len(ids)), qRecord, ids, stale,
		ids, statuses, reasons, errs, msgIDs, replies, attempts, sentAts)
}

// applyByID runs query, an update of the deliveries ids that returns the
// ids it changed (lower case), and returns stale with the ids it did not
// change appended.
func (s *Store) applyByID(ctx context.Context, what, query string, ids, stale []string, args ...any) ([]string, error) {
	rows, err := s.pool.Query(ctx, s.q.get(query), args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	done := make(map[string]bool, len(applied))
	for _, id := range applied {
		done[id] = true
	}
	for _, id := range ids {
		if !done[strings.ToLower(id)] {
			stale = append(stale, id)
		}
	}
	return stale, nil
}

// Deferral moves a claimed delivery back to queued until SendAt: a worker
// picked it up before its send time or outside its send window.
type Deferral struct {
	ID string
	// Attempt is the Claim's Attempts: only the current claim may defer.
	Attempt int
	SendAt  time.Time
}

// Defer applies deferrals in one round trip: each delivery still being
// sent by the claim that defers it goes back to queued with its new
// send_at, and the attempt that claim counted is given back, as nothing
// was tried. It returns the ids it did not change (finished, taken over
// by a later claim, or unknown).
func (s *Store) Defer(ctx context.Context, ds []Deferral) (stale []string, err error) {
	ds = slices.Clone(ds)
	slices.SortFunc(ds, func(a, b Deferral) int { return strings.Compare(strings.ToLower(a.ID), strings.ToLower(b.ID)) })
	var (
		ids      = make([]string, 0, len(ds))
		sendAts  = make([]time.Time, 0, len(ds))
		attempts = make([]int32, 0, len(ds))
	)
	for _, d := range ds {
		if !isUUID(d.ID) {
			stale = append(stale, d.ID)
			continue
		}
		ids, sendAts, attempts = append(ids, d.ID), append(sendAts, d.SendAt), append(attempts, int32(d.Attempt))
	}
	if len(ids) == 0 {
		return stale, nil
	}
	return s.applyByID(ctx, fmt.Sprintf("defer %d deliveries", len(ids)), qDeferDeliveries, ids, stale, ids, sendAts, attempts)
}

// clean makes text from SMTP servers and errors storable: PostgreSQL text
// takes neither invalid UTF-8 nor NUL bytes, and one such reply must not
// fail a whole batch of outcomes.
func clean(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// DeliveryRow is a delivery with every column. Nullable text columns read
// as "", nullable times as nil.
type DeliveryRow struct {
	ID         string
	Campaign   string
	CustomerID string
	Occurrence time.Time
	Stage      string
	Template   string
	Queue      string
	Status     string
	Reason     string
	Attempts   int
	LastError  string
	MessageID  string
	SMTPReply  string
	PlannedAt  time.Time
	QueuedAt   *time.Time
	SendingAt  *time.Time
	SentAt     *time.Time
	FailedAt   *time.Time
	SkippedAt  *time.Time
	UpdatedAt  time.Time
	Step       int
	EventID    string
	Variant    string
	SendAt     time.Time
}

// deliveryScanner scans deliveries' rows into a reused DeliveryRow.
type deliveryScanner struct {
	row                                    DeliveryRow
	attempts, step                         int32
	queued, sending, sent, failed, skipped pgtype.Timestamptz
	occurrence, planned, updated, sendAt   time.Time
	dest                                   []any
}

func newDeliveryScanner() *deliveryScanner {
	d := &deliveryScanner{}
	r := &d.row
	d.dest = []any{
		&r.ID, &r.Campaign, &r.CustomerID, &d.occurrence, &r.Stage, &r.Template, &r.Queue, &r.Status,
		&r.Reason, &d.attempts, &r.LastError, &r.MessageID, &r.SMTPReply,
		&d.planned, &d.queued, &d.sending, &d.sent, &d.failed, &d.skipped, &d.updated,
		&d.step, &r.EventID, &r.Variant, &d.sendAt,
	}
	return d
}

func (d *deliveryScanner) scan(rows pgx.Rows) (*DeliveryRow, error) {
	if err := rows.Scan(d.dest...); err != nil {
		return nil, err
	}
	r := &d.row
	r.Attempts, r.Step, r.SendAt = int(d.attempts), int(d.step), d.sendAt.UTC()
	r.Occurrence, r.PlannedAt, r.UpdatedAt = d.occurrence.UTC(), d.planned.UTC(), d.updated.UTC()
	r.QueuedAt, r.SendingAt, r.SentAt = timePtr(d.queued), timePtr(d.sending), timePtr(d.sent)
	r.FailedAt, r.SkippedAt = timePtr(d.failed), timePtr(d.skipped)
	return r, nil
}

// Delivery returns the delivery id, or an error wrapping ErrNotFound.
func (s *Store) Delivery(ctx context.Context, id string) (DeliveryRow, error) {
	if !isUUID(id) {
		return DeliveryRow{}, fmt.Errorf("delivery %s: %w", id, ErrNotFound)
	}
	rows, err := s.pool.Query(ctx, s.q.get(qDelivery), id)
	if err != nil {
		return DeliveryRow{}, fmt.Errorf("delivery %s: %w", id, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return DeliveryRow{}, fmt.Errorf("delivery %s: %w", id, err)
		}
		return DeliveryRow{}, fmt.Errorf("delivery %s: %w", id, ErrNotFound)
	}
	r, err := newDeliveryScanner().scan(rows)
	if err != nil {
		return DeliveryRow{}, fmt.Errorf("delivery %s: %w", id, err)
	}
	return *r, nil
}

// Deliveries calls fn for every delivery ordered by campaign, customer id
// and occurrence. The row is reused: fn must not keep the pointer.
func (s *Store) Deliveries(ctx context.Context, fn func(*DeliveryRow) error) error {
	return s.DeliveriesWhere(ctx, DeliveryFilter{}, fn)
}

// DeliveryFilter selects deliveries; empty fields select all.
type DeliveryFilter struct {
	Campaign, CustomerID, Status string
}

// DeliveriesWhere is Deliveries for the deliveries f selects.
func (s *Store) DeliveriesWhere(ctx context.Context, f DeliveryFilter, fn func(*DeliveryRow) error) error {
	rows, err := s.pool.Query(ctx, s.q.get(qDeliveries), f.Campaign, f.CustomerID, f.Status)
	if err != nil {
		return fmt.Errorf("deliveries: %w", err)
	}
	defer rows.Close()
	d := newDeliveryScanner()
	for rows.Next() {
		r, err := d.scan(rows)
		if err != nil {
			return fmt.Errorf("deliveries: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("deliveries: %w", err)
	}
	return nil
}

// Statuses returns the status of each delivery of ids that exists, keyed
// by id as given.
func (s *Store) Statuses(ctx context.Context, ids []string) (map[string]string, error) {
	valid := validUUIDs(ids)
	out := make(map[string]string, len(valid))
	if len(valid) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, s.q.get(qDeliveryStatuses), valid)
	if err != nil {
		return nil, fmt.Errorf("delivery statuses: %w", err)
	}
	byLower := make(map[string]string, len(valid))
	for _, id := range valid {
		byLower[strings.ToLower(id)] = id
	}
	var id, status string
	_, err = pgx.ForEachRow(rows, []any{&id, &status}, func() error {
		out[byLower[id]] = status
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("delivery statuses: %w", err)
	}
	return out, nil
}

// DeliveryCount is how many deliveries of a campaign to customers in a
// stage are in a status.
type DeliveryCount struct {
	Campaign string
	Stage    string
	Status   string
	N        int
}

// DeliveryCounts counts deliveries by campaign, stage and status, sorted in
// that order; statuses sort in their life order (planned, queued, sending,
// sent, failed, skipped).
func (s *Store) DeliveryCounts(ctx context.Context) ([]DeliveryCount, error) {
	rows, err := s.pool.Query(ctx, s.q.get(qDeliveryCounts))
	if err != nil {
		return nil, fmt.Errorf("count deliveries: %w", err)
	}
	counts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeliveryCount, error) {
		var (
			c DeliveryCount
			n int32
		)
		err := r.Scan(&c.Campaign, &c.Stage, &c.Status, &n)
		c.N = int(n)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("count deliveries: %w", err)
	}
	return counts, nil
}

// validUUIDs drops the ids that are not UUIDs: no delivery has them, and
// PostgreSQL would reject the whole statement for one of them.
func validUUIDs(ids []string) []string {
	out := ids[:0:0]
	for _, id := range ids {
		if isUUID(id) {
			out = append(out, id)
		}
	}
	return out
}

// isUUID reports whether s is a UUID in its canonical text form
// (8-4-4-4-12 hexadecimal digits).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
