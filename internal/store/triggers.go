package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"nurture/internal/audience"
)

// customerRow scans the customer columns shared by the trigger and sweep
// queries (those of the customers query) into Customer, and any other
// columns into the destinations the caller names.
type customerRow struct {
	Customer audience.Customer

	dest                    []any
	attributesCol           int
	attrs                   attrDecoder
	firstPurchase, lastPur  pgtype.Timestamptz
	ordersCount             int32
	createdAt, lastActiveAt time.Time
}

func newCustomerRow(rows pgx.Rows, extra map[string]any) (*customerRow, error) {
	r := &customerRow{}
	c := &r.Customer
	named := map[string]any{
		"id": &c.ID, "email": &c.Email, "first_name": &c.FirstName, "timezone": &c.Timezone,
		"subscribed": &c.Subscribed, "created_at": &r.createdAt, "attributes": nil, "orders_count": &r.ordersCount,
		"total_spent": &c.TotalSpent, "first_purchase_at": &r.firstPurchase, "last_purchase_at": &r.lastPur,
		"last_active_at": &r.lastActiveAt, "suppressed": &c.Suppressed,
	}
	for k, v := range extra {
		named[k] = v
	}
	var err error
	r.dest, r.attributesCol, err = bind(rows.FieldDescriptions(), named)
	return r, err
}

// scan reads the current row. Customer's pointers are new for each row,
// and its Attributes are never written to, so a copy of it may be kept.
func (r *customerRow) scan(rows pgx.Rows) error {
	binary := rows.FieldDescriptions()[r.attributesCol].Format == pgx.BinaryFormatCode
	if err := rows.Scan(r.dest...); err != nil {
		return err
	}
	c := &r.Customer
	c.CreatedAt = r.createdAt.UTC()
	c.LastActiveAt = r.lastActiveAt.UTC()
	c.OrdersCount = int(r.ordersCount)
	c.FirstPurchaseAt = timePtr(r.firstPurchase)
	c.LastPurchaseAt = timePtr(r.lastPur)
	var err error
	if c.Attributes, err = r.attrs.decode(rows.RawValues()[r.attributesCol], binary); err != nil {
		return fmt.Errorf("customer %q: %w", c.ID, err)
	}
	return nil
}

// DueFilter selects the due entries of one triggered campaign: exactly one
// of Event and Stage is set.
type DueFilter struct {
	Campaign string
	// Event is the event type that starts the campaign.
	Event string
	// Stage is the stage whose entries start the campaign.
	Stage string
	// Journey reads the history of entries from the journeys (every
	// entry counts, and Active says one is unfinished) instead of the
	// deliveries.
	Journey bool
	// Now is the evaluation instant. An entry is due at its start (the
	// event's occurred_at, or the observed stage entry) plus Delay, and is
	// selected while Now - Within < due <= Now.
	Now           time.Time
	Delay, Within time.Duration
	// Simulated are stage entries a dry run's simulated sweep observed;
	// they count as if recorded.
	Simulated []StageEntry
	// Customer, when set, selects that customer's entries alone.
	Customer string
	// Settled, for an event trigger, leaves out the events that the
	// customer's history of the campaign already keeps out at Now. Those
	// stay due until they are Within late, and an evaluation that plans
	// would read them all again each time to find the same answer.
	Settled *Settled
}

// Settled are the campaign's rules that the history of a customer alone
// decides, as audience.Target.Why checks them.
type Settled struct {
	// Max is max_sends, or max_entries for a journey; 0 means no limit.
	Max int
	// Cooldown is frequency.cooldown; 0 means none.
	Cooldown time.Duration
}

// DueEntry is an entry of a triggered campaign that is due and has no
// delivery (or journey) yet, with the customer as now and their history
// of the campaign (as for Candidates; Planned is always false).
type DueEntry struct {
	Customer audience.Customer
	History  audience.History
	// Due is the entry's start time: its occurrence.
	Due time.Time
	// EventID is the triggering event's id (events.dedup_key); "" for a
	// stage entry.
	EventID string
	// Event is the triggering event as expressions see it; nil for a
	// stage entry.
	Event *audience.Event
}

// dueRows runs the query of f's due entries (see DueEntries).
func (s *Store) dueRows(ctx context.Context, f DueFilter) (pgx.Rows, error) {
	// due in (Now - Within, Now]  <=>  start in (Now - Within - Delay, Now - Delay]
	lo, hi := f.Now.Add(-f.Within-f.Delay), f.Now.Add(-f.Delay)
	var (
		rows pgx.Rows
		err  error
	)
	// Planned at every run, never from a cached plan: a plan made while
	// deliveries or journeys were empty (a new install, or a first poll
	// after they were cleared) scans them whole for every due entry once
	// they have grown, and a poll then outlasts its period. A poll runs
	// these once per triggered campaign: planning each time is cheap.
	mode := s.replan
	switch {
	case f.Event != "" && f.Stage == "":
		settled, limit, after := f.Settled != nil, 0, pgtype.Timestamptz{}
		if settled {
			limit = f.Settled.Max
			if f.Settled.Cooldown > 0 {
				// Why's test, Now - last < Cooldown, is last > Now - Cooldown.
				// Stored times are whole microseconds, so the bound rounded
				// down to one gives the same answer.
				after = pgtype.Timestamptz{Time: f.Now.Add(-f.Settled.Cooldown).Truncate(time.Microsecond), Valid: true}
			}
		}
		rows, err = s.pool.Query(ctx, s.q.get(qDueEvents), mode, f.Campaign, f.Event, lo, hi, f.Now, f.Journey, settled, limit, after, f.Customer)
	case f.Stage != "" && f.Event == "":
		ids := make([]string, 0, len(f.Simulated))
		times := make([]time.Time, 0, len(f.Simulated))
		for _, e := range f.Simulated {
			if e.Stage == f.Stage && e.ObservedAt.After(lo) && !e.ObservedAt.After(hi) {
				ids, times = append(ids, e.CustomerID), append(times, e.ObservedAt)
			}
		}
		rows, err = s.pool.Query(ctx, s.q.get(qDueStageEntries), mode, f.Campaign, f.Stage, lo, hi, f.Now,
			f.Delay.Microseconds(), ids, times, f.Journey, f.Customer)
	default:
		return nil, fmt.Errorf("due entries of campaign %q: want exactly one of an event type and a stage", f.Campaign)
	}
	if err != nil {
		return nil, fmt.Errorf("due entries of campaign %q: %w", f.Campaign, err)
	}
	return rows, nil
}

// DueEntries calls fn for each due entry of f's campaign that has no
// delivery of the campaign yet: for an event trigger, events of the type
// without an entry of this campaign; for a stage trigger, recorded (and
// simulated) entries into the stage without a delivery at their due time.
// Entries of customers that do not exist (yet) are left out. They come in
// customer id order, then start time. The DueEntry is reused: fn may keep
// a copy of the value, not the pointer.
func (s *Store) DueEntries(ctx context.Context, f DueFilter, fn func(*DueEntry) error) error {
	// due in (Now - Within, Now]  <=>  start in (Now - Within - Delay, Now - Delay]
	rows, err := s.dueRows(ctx, f)
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		e          DueEntry
		eventID    string
		eventType  string
		occurredAt pgtype.Timestamptz
		amount     pgtype.Float8
		properties map[string]any
		enteredAt  time.Time
		sends      int32
		lastOcc    pgtype.Timestamptz
		active     bool
	)
	cr, err := newCustomerRow(rows, map[string]any{
		"event_id": &eventID, "event_type": &eventType, "occurred_at": &occurredAt, "amount": &amount,
		"properties": &properties, "entered_at": &enteredAt, "sends": &sends, "last_occurrence": &lastOcc, "active": &active,
	})
	if err != nil {
		return fmt.Errorf("due entries of campaign %q: %w", f.Campaign, err)
	}
	for rows.Next() {
		properties = nil
		if err := cr.scan(rows); err != nil {
			return fmt.Errorf("due entries of campaign %q: %w", f.Campaign, err)
		}
		e.Customer = cr.Customer
		e.History = audience.History{Sends: int(sends), LastOccurrence: timePtr(lastOcc), Active: active}
		e.Due = enteredAt.UTC().Add(f.Delay)
		e.EventID = eventID
		e.Event = nil
		if eventID != "" {
			ev := &audience.Event{ID: eventID, Type: eventType, OccurredAt: occurredAt.Time.UTC(), Properties: properties}
			if ev.Properties == nil {
				ev.Properties = map[string]any{}
			}
			if amount.Valid {
				a := amount.Float64
				ev.Amount = &a
			}
			e.Event = ev
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("due entries of campaign %q: %w", f.Campaign, err)
	}
	return nil
}
