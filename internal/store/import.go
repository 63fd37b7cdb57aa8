package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
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
func (im *Import) Events(ctx context.Context, recs []EventRecord) (inserted int, err error) {
	if len(recs) == 0 {
		return 0, nil
	}
	if err := im.prepare(ctx, &im.events, qImportEventsTable, qImportEventsClear); err != nil {
		return 0, err
	}
	_, err = im.tx.CopyFrom(ctx, pgx.Identifier{"import_events"},
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
