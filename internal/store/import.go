package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// CustomerRecord is one customer to import.
type CustomerRecord struct {
	ID        string
	Email     string
	FirstName string
	Timezone  string // IANA name; "" means UTC
	// Subscribed is the consent the importer knows of. False unsubscribes
	// the customer. True subscribes a customer unsubscribed by an earlier
	// import, but not one who opted out themselves (Unsubscribe): only
	// Resubscribe undoes that. Suppressions are separate and survive any
	// import.
	Subscribed bool
	// CreatedAt is when the customer signed up. The zero time means now for
	// a new customer and the stored value for an existing one.
	CreatedAt  time.Time
	Attributes []byte // a JSON object; nil means {}
}

// EventRecord is one event to import.
type EventRecord struct {
	// ID is the caller's event id, optional. An event whose id was imported
	// before is ignored. Without an id, an event identical in every field
	// to one imported before is ignored.
	ID         string
	CustomerID string
	Type       string // "purchase" events make the purchase facts
	OccurredAt time.Time
	Amount     *float64 // stored with 2 decimals
	Properties []byte   // a JSON object; nil means {}
}

// Import is one transaction that imports customers and events. Imports
// run one at a time: BeginImport waits for the previous one to end.
type Import struct {
	s         *Store
	tx        pgx.Tx
	customers bool // import_customers exists
	events    bool // import_events exists
	// savepoints counts the savepoints taken around copies of events.
	savepoints int
	// seenOld is set once a batch of events met keys imported before.
	seenOld bool
}

// BeginImport starts an import. Commit or Rollback it.
func (s *Store) BeginImport(ctx context.Context) (*Import, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin import: %w", err)
	}
	if _, err := tx.Exec(ctx, s.q.get(qImportLock)); err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("wait for other imports: %w", err)
	}
	return &Import{s: s, tx: tx}, nil
}

// Commit makes everything imported visible.
func (im *Import) Commit(ctx context.Context) error {
	if err := im.tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit import: %w", err)
	}
	return nil
}

// Rollback discards everything imported. It is a no-op after Commit.
func (im *Import) Rollback(ctx context.Context) error {
	if err := im.tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return fmt.Errorf("roll back import: %w", err)
	}
	return nil
}

// Customers upserts recs by id and returns how many customers were created
// or changed. An existing customer keeps its facts; a new one gets the
// facts of the events imported before it. When an id repeats, its last
// record wins. Every change of consent, and every customer created
// unsubscribed, is added to the consent history with the source "import".
func (im *Import) Customers(ctx context.Context, recs []CustomerRecord) (int, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	q := im.s.q
	if err := im.prepare(ctx, &im.customers, qImportCustomersTable, qImportCustomersClear); err != nil {
		return 0, err
	}
	_, err := im.tx.CopyFrom(ctx, pgx.Identifier{"import_customers"},
		[]string{"ord", "id", "email", "first_name", "timezone", "subscribed", "created_at", "attributes"},
		pgx.CopyFromSlice(len(recs), func(i int) ([]any, error) {
			r := &recs[i]
			tz := r.Timezone
			if tz == "" {
				tz = "UTC"
			}
			var created any
			if !r.CreatedAt.IsZero() {
				created = r.CreatedAt
			}
			return []any{int32(i), r.ID, r.Email, r.FirstName, tz, r.Subscribed, created, jsonObject(r.Attributes)}, nil
		}))
	if err != nil {
		return 0, fmt.Errorf("copy customers: %w", err)
	}
	now := im.s.cfg.Now()
	var upd, ins int64
	if err := im.tx.QueryRow(ctx, q.get(qImportCustomersUpd), now).Scan(&upd); err != nil {
		return 0, fmt.Errorf("update customers: %w", err)
	}
	if err := im.tx.QueryRow(ctx, q.get(qImportCustomersIns), now).Scan(&ins); err != nil {
		return 0, fmt.Errorf("insert customers: %w", err)
	}
	return int(upd + ins), nil
}

// Events inserts recs, skipping those imported before, updates the facts
// of their customers and returns how many events were inserted.
//
// Repeated keys of the batch are dropped here (the first record of a key
// wins) and the rest is copied straight into events, under a savepoint;
// the facts then move by sums made here, one row per customer. When the
// copy meets a key that events already holds, the batch is written again
// the way that tolerates it: one INSERT ... ON CONFLICT DO NOTHING through
// a temporary table, as for a re-imported file. After that, and past
// maxImportSavepoints, the import looks up its batches' keys before it
// copies them, so that a batch that repeats earlier events is copied
// without them.
func (im *Import) Events(ctx context.Context, recs []EventRecord) (inserted int, err error) {
	if len(recs) == 0 {
		return 0, nil
	}
	rows, err := newEventRows(recs)
	if err != nil {
		return 0, err
	}
	if im.seenOld || im.savepoints >= maxImportSavepoints {
		if rows, err = im.dropExisting(ctx, rows); err != nil {
			return 0, err
		}
		if len(rows) == 0 {
			return 0, nil
		}
	}
	q := im.s.q
	guarded := im.savepoints < maxImportSavepoints
	if guarded {
		if _, err := im.tx.Exec(ctx, q.get(qImportEventsSave)); err != nil {
			return 0, fmt.Errorf("insert events: %w", err)
		}
		im.savepoints++
	}
	if err := im.copyEvents(ctx, rows); err != nil {
		var pgErr *pgconn.PgError
		if !guarded || !errors.As(err, &pgErr) || pgErr.Code != uniqueViolation {
			return 0, err
		}
		for _, name := range []string{qImportEventsRollback, qImportEventsRelease} {
			if _, err := im.tx.Exec(ctx, q.get(name)); err != nil {
				return 0, fmt.Errorf("insert events again: %w", err)
			}
		}
		im.seenOld = true
		return im.insertEvents(ctx, recs)
	}
	f := eventFacts(rows)
	b := &pgx.Batch{}
	if guarded {
		b.Queue(q.get(qImportEventsRelease))
	}
	b.Queue(q.get(qImportEventsFacts), f.ids, f.orders, f.cents, f.firstPurchase, f.lastPurchase, f.lastEvent)
	if err := im.tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, fmt.Errorf("update facts: %w", err)
	}
	return len(rows), nil
}

// maxImportSavepoints bounds the savepoints an import takes around its
// copies of events. PostgreSQL keeps the ids of 64 subtransactions per
// transaction in shared memory; past that, every other session's snapshot
// checks of this transaction's rows go through pg_subtrans, which slows
// the whole server while a long import runs. Later batches of such an
// import look their keys up and are copied without a savepoint: imports
// wait for each other (BeginImport), so no key can appear in between
// unless something else writes events, and then the unique index fails
// the import rather than let an event in twice.
const maxImportSavepoints = 48

// uniqueViolation is PostgreSQL's SQLSTATE for a duplicate key.
const uniqueViolation = "23505"

// eventRow is an event of a batch that is to be inserted.
type eventRow struct {
	rec   *EventRecord
	key   string
	cents int64 // the amount, when there is one
}

// newEventRows returns the rows of recs with their dedup keys, the first
// record of each key only.
func newEventRows(recs []EventRecord) ([]eventRow, error) {
	rows := make([]eventRow, 0, len(recs))
	seen := make(map[string]struct{}, len(recs))
	for i := range recs {
		r := &recs[i]
		key, err := dedupKey(r)
		if err != nil {
			return nil, err
		}
		if _, dup := seen[key]; dup {
			continue
		}
		seen[key] = struct{}{}
		row := eventRow{rec: r, key: key}
		if r.Amount != nil {
			if row.cents, err = cents(*r.Amount); err != nil {
				return nil, fmt.Errorf("event of customer %q: %w", r.CustomerID, err)
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// dropExisting returns rows without those whose key is in events.
func (im *Import) dropExisting(ctx context.Context, rows []eventRow) ([]eventRow, error) {
	keys := make([]string, len(rows))
	for i := range rows {
		keys[i] = rows[i].key
	}
	found, err := im.tx.Query(ctx, im.s.q.get(qImportEventsExisting), keys)
	if err != nil {
		return nil, fmt.Errorf("look up events: %w", err)
	}
	existing, err := pgx.CollectRows(found, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("look up events: %w", err)
	}
	if len(existing) == 0 {
		return rows, nil
	}
	old := make(map[string]struct{}, len(existing))
	for _, k := range existing {
		old[k] = struct{}{}
	}
	return slices.DeleteFunc(rows, func(r eventRow) bool {
		_, ok := old[r.key]
		return ok
	}), nil
}

// copyEvents copies rows into events.
func (im *Import) copyEvents(ctx context.Context, rows []eventRow) error {
	_, err := im.tx.CopyFrom(ctx, pgx.Identifier{"events"},
		[]string{"dedup_key", "customer_id", "type", "occurred_at", "amount", "properties"},
		pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			row := &rows[i]
			r := row.rec
			amount := pgtype.Numeric{}
			if r.Amount != nil {
				amount = pgtype.Numeric{Int: big.NewInt(row.cents), Exp: -2, Valid: true}
			}
			return []any{row.key, r.CustomerID, r.Type, r.OccurredAt, amount, jsonObject(r.Properties)}, nil
		}))
	if err != nil {
		return fmt.Errorf("copy events: %w", err)
	}
	return nil
}

// factRows are the facts events add to their customers, one element per
// customer in each slice, as the parameters of import-events-facts.
type factRows struct {
	ids                                    []string
	orders                                 []int32
	cents                                  []int64
	firstPurchase, lastPurchase, lastEvent []pgtype.Timestamptz
}

// eventFacts sums up the facts rows add to each of their customers:
// purchases, their amounts, the first and last purchase, the last event.
func eventFacts(rows []eventRow) factRows {
	var f factRows
	at := make(map[string]int, len(rows))
	for i := range rows {
		r := rows[i].rec
		j, ok := at[r.CustomerID]
		if !ok {
			j = len(f.ids)
			at[r.CustomerID] = j
			f.ids = append(f.ids, r.CustomerID)
			f.orders = append(f.orders, 0)
			f.cents = append(f.cents, 0)
			f.firstPurchase = append(f.firstPurchase, pgtype.Timestamptz{})
			f.lastPurchase = append(f.lastPurchase, pgtype.Timestamptz{})
			f.lastEvent = append(f.lastEvent, pgtype.Timestamptz{Time: r.OccurredAt, Valid: true})
		}
		if last := &f.lastEvent[j]; r.OccurredAt.After(last.Time) {
			last.Time = r.OccurredAt
		}
		if r.Type != purchaseType {
			continue
		}
		f.orders[j]++
		if r.Amount != nil {
			f.cents[j] += rows[i].cents
		}
		if first := &f.firstPurchase[j]; !first.Valid || r.OccurredAt.Before(first.Time) {
			*first = pgtype.Timestamptz{Time: r.OccurredAt, Valid: true}
		}
		if last := &f.lastPurchase[j]; !last.Valid || r.OccurredAt.After(last.Time) {
			*last = pgtype.Timestamptz{Time: r.OccurredAt, Valid: true}
		}
	}
	return f
}

// purchaseType is the event type that makes the purchase facts.
const purchaseType = "purchase"

// cents is amount in hundredths, rounded half away from zero from its
// shortest decimal form: the value PostgreSQL stores when the float is
// sent to a numeric(16, 2) column, as imports did before they computed
// sums themselves.
func cents(amount float64) (int64, error) {
	if math.IsNaN(amount) || math.Abs(amount) >= 1e14 {
		return 0, fmt.Errorf("amount %v is out of range", amount)
	}
	whole, frac, _ := strings.Cut(strconv.FormatFloat(math.Abs(amount), 'f', -1, 64), ".")
	n, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %v: %w", amount, err)
	}
	frac += "000"
	c := n*100 + int64(frac[0]-'0')*10 + int64(frac[1]-'0')
	if frac[2] >= '5' {
		c++
	}
	if amount < 0 {
		c = -c
	}
	return c, nil
}

// insertEvents writes recs through the temporary table: the way that
// tolerates keys inserted since they were looked up.
func (im *Import) insertEvents(ctx context.Context, recs []EventRecord) (int, error) {
	if err := im.prepare(ctx, &im.events, qImportEventsTable, qImportEventsClear); err != nil {
		return 0, err
	}
	_, err := im.tx.CopyFrom(ctx, pgx.Identifier{"import_events"},
		[]string{"dedup_key", "customer_id", "type", "occurred_at", "amount", "properties"},
		pgx.CopyFromSlice(len(recs), func(i int) ([]any, error) {
			r := &recs[i]
			key, err := dedupKey(r)
			if err != nil {
				return nil, err
			}
			var amount any
			if r.Amount != nil {
				amount = *r.Amount
			}
			return []any{key, r.CustomerID, r.Type, r.OccurredAt, amount, jsonObject(r.Properties)}, nil
		}))
	if err != nil {
		return 0, fmt.Errorf("copy events: %w", err)
	}
	var n int64
	if err := im.tx.QueryRow(ctx, im.s.q.get(qImportEventsInsert)).Scan(&n); err != nil {
		return 0, fmt.Errorf("insert events: %w", err)
	}
	return int(n), nil
}

// prepare creates a temporary table on first use and empties it after.
func (im *Import) prepare(ctx context.Context, created *bool, create, clear string) error {
	name := create
	if *created {
		name = clear
	}
	if _, err := im.tx.Exec(ctx, im.s.q.get(name)); err != nil {
		return fmt.Errorf("prepare import table: %w", err)
	}
	*created = true
	return nil
}

func jsonObject(b []byte) []byte {
	if len(bytes.TrimSpace(b)) == 0 {
		return []byte("{}")
	}
	return b
}

// dedupKey is the key that makes importing an event twice a no-op: the
// event's id when it has one, otherwise "sha256:" and the hash of the
// event's customer, type, time (to the microsecond, in UTC), amount and
// properties (with keys sorted, insignificant spaces removed).
func dedupKey(r *EventRecord) (string, error) {
	if r.ID != "" {
		return r.ID, nil
	}
	h := sha256.New()
	field := func(s string) {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	field(r.CustomerID)
	field(r.Type)
	field(r.OccurredAt.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano))
	if r.Amount != nil {
		field(strconv.FormatFloat(*r.Amount, 'f', 2, 64))
	} else {
		field("null")
	}
	props, err := canonicalJSON(jsonObject(r.Properties))
	if err != nil {
		return "", fmt.Errorf("event of customer %q: properties: %w", r.CustomerID, err)
	}
	field(string(props))
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// canonicalJSON re-encodes a JSON value with object keys sorted and no
// insignificant space; numbers keep their text.
func canonicalJSON(b []byte) ([]byte, error) {
	if bytes.Equal(b, []byte("{}")) {
		return b, nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}
