package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"nurture/internal/audience"
	"nurture/internal/freqcap"
)

// Journey statuses.
const (
	JourneyActive   = "active"
	JourneyFinished = "finished"
	JourneyExited   = "exited"
)

// NewJourney is one entry into a journey, with the step it has reached
// in the evaluation that made it.
type NewJourney struct {
	Campaign   string
	CustomerID string
	Occurrence time.Time // the entry's start time
	EventID    string
	Step       int    // the last step recorded with the entry (0: none)
	Status     string // JourneyActive, or finished or exited at once
	Reason     string
}

func (j NewJourney) key() journeyKey {
	return journeyKey{j.Campaign, j.CustomerID, j.Occurrence.UTC().UnixMicro(), j.EventID}
}

type journeyKey struct {
	campaign, customer string
	occurrence         int64
	event              string
}

func deliveryJourneyKey(d NewDelivery) journeyKey {
	return journeyKey{d.Campaign, d.CustomerID, d.Occurrence.UTC().UnixMicro(), d.EventID}
}

// add counts b's rows into in.
func (in *Inserted) add(b Inserted) {
	in.Planned = append(in.Planned, b.Planned...)
	in.HeldOut += b.HeldOut
	in.Capped += b.Capped
	in.Skipped += b.Skipped
}

// EnterJourneys records entries and the deliveries of the steps they
// reached, in one transaction: an entry refused because the customer has
// an unfinished journey of the campaign, or because the same entry (or
// event) started one already, records nothing, deliveries included. It
// returns how many entries were recorded, and what PlanDeliveries would.
func (s *Store) EnterJourneys(ctx context.Context, js []NewJourney, ds []NewDelivery, cp freqcap.Cap) (int, Inserted, error) {
	if len(js) == 0 {
		return 0, Inserted{}, nil
	}
	var (
		entered int
		in      Inserted
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		entered, in = 0, Inserted{}
		n := len(js)
		var (
			campaigns   = make([]string, n)
			customers   = make([]string, n)
			occurrences = make([]time.Time, n)
			events      = make([]string, n)
			steps       = make([]int32, n)
			statuses    = make([]string, n)
			reasons     = make([]string, n)
		)
		for i, j := range js {
			campaigns[i], customers[i], occurrences[i], events[i] = j.Campaign, j.CustomerID, j.Occurrence, j.EventID
			steps[i], statuses[i], reasons[i] = int32(j.Step), j.Status, j.Reason
			if statuses[i] == "" {
				statuses[i] = JourneyActive
			}
		}
		rows, err := tx.Query(ctx, s.q.get(qEnterJourneys), campaigns, customers, occurrences, events, steps, statuses, reasons)
		if err != nil {
			return err
		}
		created := map[journeyKey]bool{}
		var k NewJourney
		_, err = pgx.ForEachRow(rows, []any{&k.Campaign, &k.CustomerID, &k.Occurrence, &k.EventID}, func() error {
			created[k.key()] = true
			return nil
		})
		if err != nil {
			return err
		}
		entered = len(created)
		keep := make([]NewDelivery, 0, len(ds))
		for _, d := range ds {
			if created[deliveryJourneyKey(d)] {
				keep = append(keep, d)
			}
		}
		in, err = s.insertTx(ctx, tx, keep, cp)
		return err
	})
	if err != nil {
		return 0, Inserted{}, fmt.Errorf("enter journeys: %w", err)
	}
	return entered, in, nil
}

// JourneyMove moves one journey on from the step its evaluation saw.
type JourneyMove struct {
	ID       int64
	FromStep int
	ToStep   int
	Status   string // JourneyActive, JourneyFinished or JourneyExited
	Reason   string
}

// AdvanceJourneys applies moves and records the deliveries of the steps
// they reached, in one transaction. A journey that another process moved
// since it was read is left alone, and its deliveries are not recorded
// (ds[i] belongs to the move whose ID is journeys[i]). It returns how
// many journeys moved and what PlanDeliveries would.
func (s *Store) AdvanceJourneys(ctx context.Context, moves []JourneyMove, ds []NewDelivery, journeys []int64, cp freqcap.Cap) (int, Inserted, error) {
	if len(moves) == 0 {
		return 0, Inserted{}, nil
	}
	if len(ds) != len(journeys) {
		return 0, Inserted{}, fmt.Errorf("advance journeys: %d deliveries for %d journey ids", len(ds), len(journeys))
	}
	var (
		moved int
		in    Inserted
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		moved, in = 0, Inserted{}
		n := len(moves)
		var (
			ids      = make([]int64, n)
			from, to = make([]int32, n), make([]int32, n)
			statuses = make([]string, n)
			reasons  = make([]string, n)
		)
		for i, m := range moves {
			ids[i], from[i], to[i], statuses[i], reasons[i] = m.ID, int32(m.FromStep), int32(m.ToStep), m.Status, m.Reason
		}
		rows, err := tx.Query(ctx, s.q.get(qAdvanceJourneys), ids, from, to, statuses, reasons)
		if err != nil {
			return err
		}
		done := map[int64]bool{}
		var id int64
		_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
			done[id] = true
			return nil
		})
		if err != nil {
			return err
		}
		moved = len(done)
		keep := make([]NewDelivery, 0, len(ds))
		for i, d := range ds {
			if done[journeys[i]] {
				keep = append(keep, d)
			}
		}
		in, err = s.insertTx(ctx, tx, keep, cp)
		return err
	})
	if err != nil {
		return 0, Inserted{}, fmt.Errorf("advance journeys: %w", err)
	}
	return moved, in, nil
}

// ActiveJourney is an unfinished journey whose next step may be due, with
// its customer as they are now and its triggering event.
type ActiveJourney struct {
	ID         int64
	CustomerID string
	Occurrence time.Time
	EventID    string
	Step       int
	// LastStatus is the status of the last step's delivery ("" when the
	// journey has none yet).
	LastStatus string
	// Found is false when the customer no longer exists.
	Found    bool
	Customer audience.Customer
	Event    *audience.Event // nil without one
}

// ActiveJourneys calls fn, in customer id order, for every unfinished
// journey of campaign whose next step is due at now, or whose last step
// may be finished; offsets[i] is step i+1's offset from the start, and one
// more offset follows the last step (when the journey may finish). A
// journey whose last step's delivery is unfinished is left out. fn must
// not keep the pointer.
func (s *Store) ActiveJourneys(ctx context.Context, campaign string, offsets []time.Duration, now time.Time, fn func(*ActiveJourney) error) error {
	micros := make([]int64, len(offsets))
	for i, d := range offsets {
		micros[i] = d.Microseconds()
	}
	// Planned at every run, as the due entries are (see dueRows): the
	// journeys and their deliveries grow from empty.
	rows, err := s.pool.Query(ctx, s.q.get(qActiveJourneys), s.replan, campaign, micros, now)
	if err != nil {
		return fmt.Errorf("journeys of campaign %q: %w", campaign, err)
	}
	defer rows.Close()
	var (
		j                              ActiveJourney
		c                              = &j.Customer
		step, orders                   int32
		created, firstPur, lastPur     pgtype.Timestamptz
		lastActive, evAt               pgtype.Timestamptz
		attrs, evProps                 []byte
		evType                         pgtype.Text
		evAmount                       pgtype.Float8
		occurrence                     time.Time
		email, first, tz               string
		subscribed, suppressed, found  bool
		id                             int64
		customerID, eventID, lastState string
		total                          float64
	)
	for rows.Next() {
		err := rows.Scan(&id, &customerID, &occurrence, &eventID, &step, &lastState, &found, &email, &first, &tz,
			&subscribed, &suppressed, &created, &attrs, &orders, &total, &firstPur, &lastPur, &lastActive,
			&evType, &evAt, &evAmount, &evProps)
		if err != nil {
			return fmt.Errorf("journeys of campaign %q: %w", campaign, err)
		}
		j = ActiveJourney{ID: id, CustomerID: customerID, Occurrence: occurrence.UTC(), EventID: eventID, Step: int(step),
			LastStatus: lastState, Found: found}
		*c = audience.Customer{ID: customerID, Email: email, FirstName: first, Timezone: tz, Subscribed: subscribed,
			Suppressed: suppressed, OrdersCount: int(orders), TotalSpent: total,
			FirstPurchaseAt: timePtr(firstPur), LastPurchaseAt: timePtr(lastPur)}
		if created.Valid {
			c.CreatedAt = created.Time.UTC()
		}
		if lastActive.Valid {
			c.LastActiveAt = lastActive.Time.UTC()
		}
		if c.Attributes, err = decodeAttributes(attrs, false); err != nil {
			return fmt.Errorf("journeys of campaign %q: customer %q: %w", campaign, customerID, err)
		}
		if evType.Valid {
			ev := &audience.Event{ID: eventID, Type: evType.String}
			if evAt.Valid {
				ev.OccurredAt = evAt.Time.UTC()
			}
			if evAmount.Valid {
				a := evAmount.Float64
				ev.Amount = &a
			}
			if ev.Properties, err = decodeAttributes(evProps, false); err != nil {
				return fmt.Errorf("journeys of campaign %q: event %q: %w", campaign, eventID, err)
			}
			if ev.Properties == nil {
				ev.Properties = map[string]any{}
			}
			j.Event = ev
		}
		if err := fn(&j); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("journeys of campaign %q: %w", campaign, err)
	}
	return nil
}

// ExitRemovedJourneys ends the unfinished journeys of every campaign not in
// keep, with reason "campaign removed", and returns how many ended.
func (s *Store) ExitRemovedJourneys(ctx context.Context, keep []string) (int, error) {
	if keep == nil {
		keep = []string{}
	}
	tag, err := s.pool.Exec(ctx, s.q.get(qExitRemovedJourneys), keep)
	if err != nil {
		return 0, fmt.Errorf("end journeys of removed campaigns: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// JourneyRow is one journey as stored.
type JourneyRow struct {
	ID         int64
	Campaign   string
	CustomerID string
	Occurrence time.Time
	EventID    string
	Step       int
	Status     string
	Reason     string
	StartedAt  time.Time
	EndedAt    *time.Time
}

// Journeys returns the journeys of campaign and customer ("" for any),
// sorted by campaign, customer, occurrence.
func (s *Store) Journeys(ctx context.Context, campaign, customer string) ([]JourneyRow, error) {
	rows, err := s.pool.Query(ctx, s.q.get(qJourneys), campaign, customer)
	if err != nil {
		return nil, fmt.Errorf("journeys: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (JourneyRow, error) {
		var (
			j     JourneyRow
			step  int32
			ended pgtype.Timestamptz
		)
		err := r.Scan(&j.ID, &j.Campaign, &j.CustomerID, &j.Occurrence, &j.EventID, &step, &j.Status, &j.Reason, &j.StartedAt, &ended)
		j.Step, j.EndedAt = int(step), timePtr(ended)
		j.Occurrence, j.StartedAt = j.Occurrence.UTC(), j.StartedAt.UTC()
		return j, err
	})
	if err != nil {
		return nil, fmt.Errorf("journeys: %w", err)
	}
	return out, nil
}
