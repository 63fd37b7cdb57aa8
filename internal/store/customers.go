package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"nurture/internal/audience"
)

// AddSuppression is Suppress with the source "manual".
func (s *Store) AddSuppression(ctx context.Context, email, reason string) error {
	return s.Suppress(ctx, Suppression{Email: email, Reason: reason, Source: "manual"})
}

// Suppression is an address no campaign may email.
type Suppression struct {
	Email     string // lower case
	Reason    string // bounce, complaint, ...
	Source    string // who put it there: cli, api, a feed
	CreatedAt time.Time
}

// Suppress puts an address on the suppression list, compared without
// regard to case; no campaign sends to it again. Adding an address twice
// keeps the latest reason and source.
func (s *Store) Suppress(ctx context.Context, sp Suppression) error {
	return s.SuppressAll(ctx, []Suppression{sp})
}

// SuppressAll is Suppress for many addresses in one statement: all are
// added, or none. Of an address given twice (in any case), the last wins.
func (s *Store) SuppressAll(ctx context.Context, sps []Suppression) error {
	last := map[string]int{}
	for i, sp := range sps {
		last[strings.ToLower(strings.TrimSpace(sp.Email))] = i
	}
	var emails, reasons, sources []string
	for i, sp := range sps {
		e := strings.ToLower(strings.TrimSpace(sp.Email))
		if e == "" {
			return fmt.Errorf("suppress: empty email address")
		}
		if last[e] != i {
			continue
		}
		emails, reasons, sources = append(emails, e), append(reasons, sp.Reason), append(sources, sp.Source)
	}
	if _, err := s.pool.Exec(ctx, s.q.get(qAddSuppressions), emails, reasons, sources); err != nil {
		return fmt.Errorf("suppress %d addresses: %w", len(emails), err)
	}
	return nil
}

// Unsuppress takes email off the suppression list and reports whether it
// was on it.
func (s *Store) Unsuppress(ctx context.Context, email string) (bool, error) {
	tag, err := s.pool.Exec(ctx, s.q.get(qRemoveSuppression), strings.TrimSpace(email))
	if err != nil {
		return false, fmt.Errorf("unsuppress %q: %w", email, err)
	}
	return tag.RowsAffected() > 0, nil
}

// Suppressions returns the suppression list, sorted by address.
func (s *Store) Suppressions(ctx context.Context) ([]Suppression, error) {
	rows, err := s.pool.Query(ctx, s.q.get(qSuppressions))
	if err != nil {
		return nil, fmt.Errorf("suppressions: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Suppression, error) {
		var sp Suppression
		err := r.Scan(&sp.Email, &sp.Reason, &sp.Source, &sp.CreatedAt)
		sp.CreatedAt = sp.CreatedAt.UTC()
		return sp, err
	})
	if err != nil {
		return nil, fmt.Errorf("suppressions: %w", err)
	}
	return list, nil
}

// ConsentChange is one change of a customer's consent.
type ConsentChange struct {
	Subscribed bool
	// Source says who changed it: "import", "unsubscribe link", or the
	// source given to Resubscribe.
	Source string
	// Campaign is the campaign whose email carried the opt-out; "" when
	// unknown.
	Campaign  string
	ChangedAt time.Time // UTC
}

// Unsubscribe records that the customer withdrew consent through source
// (e.g. "unsubscribe link"), from an email of campaign ("" when unknown).
// Unlike an import's, this opt-out is sticky: no import subscribes the
// customer again, only Resubscribe does. It reports whether anything
// changed: a customer who opted out already keeps their first opt-out. An
// unknown customer is an error wrapping ErrNotFound.
func (s *Store) Unsubscribe(ctx context.Context, customerID, source, campaign string) (changed bool, err error) {
	if source == "" {
		return false, fmt.Errorf("unsubscribe customer %q: empty source", customerID)
	}
	var found bool
	err = s.pool.QueryRow(ctx, s.q.get(qUnsubscribe), customerID, source, nullable(campaign), s.cfg.Now()).Scan(&found, &changed)
	if err != nil {
		return false, fmt.Errorf("unsubscribe customer %q: %w", customerID, err)
	}
	if !found {
		return false, fmt.Errorf("unsubscribe customer %q: %w", customerID, ErrNotFound)
	}
	return changed, nil
}

// Resubscribe subscribes the customer again, whoever unsubscribed them,
// and records source (who asked for it, required) in the consent history.
// It reports whether anything changed: a subscribed customer stays as is.
// It waits for an import in progress, which keeps the history the import
// writes exact. An unknown customer is an error wrapping ErrNotFound.
func (s *Store) Resubscribe(ctx context.Context, customerID, source string) (changed bool, err error) {
	if source == "" {
		return false, fmt.Errorf("resubscribe customer %q: empty source", customerID)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("resubscribe customer %q: %w", customerID, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, s.q.get(qImportLock)); err != nil {
		return false, fmt.Errorf("resubscribe customer %q: wait for imports: %w", customerID, err)
	}
	var found bool
	if err := tx.QueryRow(ctx, s.q.get(qResubscribe), customerID, source, s.cfg.Now()).Scan(&found, &changed); err != nil {
		return false, fmt.Errorf("resubscribe customer %q: %w", customerID, err)
	}
	if !found {
		return false, fmt.Errorf("resubscribe customer %q: %w", customerID, ErrNotFound)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("resubscribe customer %q: %w", customerID, err)
	}
	return changed, nil
}

// ConsentHistory returns every change of the customer's consent, oldest
// first; none for an unknown customer.
func (s *Store) ConsentHistory(ctx context.Context, customerID string) ([]ConsentChange, error) {
	rows, err := s.pool.Query(ctx, s.q.get(qConsentHistory), customerID)
	if err != nil {
		return nil, fmt.Errorf("consent history of customer %q: %w", customerID, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[ConsentChange])
	if err != nil {
		return nil, fmt.Errorf("consent history of customer %q: %w", customerID, err)
	}
	for i := range out {
		out[i].ChangedAt = out[i].ChangedAt.UTC()
	}
	return out, nil
}

// nullable is nil for "", so that it is stored as NULL.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Candidate is a customer who may be in a campaign's audience, with their
// history of that campaign.
type Candidate struct {
	Customer audience.Customer
	History  audience.History
}

// CandidateFilter selects the candidates of one campaign at one instant.
type CandidateFilter struct {
	Campaign string
	// At is the evaluation instant, used to the microsecond.
	At time.Time
	// MinInactive and MaxInactive bound inactive_days at At, inclusive;
	// nil is unbounded.
	MinInactive, MaxInactive *int
	// SkipAttributes leaves Customer.Attributes nil instead of decoding
	// them, for campaigns whose expressions never read them.
	SkipAttributes bool
	// Journey reads the history of entries from the journeys instead of
	// deliveries.
	Journey bool
}

// bounds turns inactive_days bounds into bounds of last_active_at:
// inactive_days = floor((At - last_active_at) / 24h), so
// min <= d <= max  <=>  At - (max+1)*24h < last_active_at <= At - min*24h.
func (f CandidateFilter) bounds() (after, upTo *time.Time) {
	const day = 24 * time.Hour
	if f.MaxInactive != nil {
		t := f.At.Add(-time.Duration(*f.MaxInactive+1) * day)
		after = &t
	}
	if f.MinInactive != nil {
		t := f.At.Add(-time.Duration(*f.MinInactive) * day)
		upTo = &t
	}
	return after, upTo
}

// Candidates calls fn, in customer id order, for every customer who is
// subscribed, whose email is not suppressed and whose inactive_days at f.At
// is within f's bounds, with their history of f.Campaign: Sends counts the
// campaign's deliveries to them in any status but failed and skipped, and
// LastOccurrence is the latest occurrence of those before f.At. Failed and
// skipped deliveries sent no email, so they neither use up max_sends nor
// start a cooldown. Planned says a delivery of the campaign at exactly f.At
// exists already, in any status.
//
// The Candidate is reused for the next row: fn must not keep the pointer,
// though it may keep a copy of the value (its maps and pointers are not
// reused). Rows stream from the database; an error from fn stops the scan
// and is returned as is.
func (s *Store) Candidates(ctx context.Context, f CandidateFilter, fn func(*Candidate) error) error {
	after, upTo := f.bounds()
	// A person's opt-out holds for their address under any customer id.
	// The set is read first and checked here rather than joined in SQL,
	// which would cost a sort of every customer (see the query's comment).
	optedOut, err := s.optedOutAddresses(ctx)
	if err != nil {
		return fmt.Errorf("candidates of campaign %q: %w", f.Campaign, err)
	}
	query := qCandidates
	if f.Journey {
		query = qCandidatesJourney
	}
	rows, err := s.pool.Query(ctx, s.q.get(query), f.Campaign, f.At, after, upTo)
	if err != nil {
		return fmt.Errorf("candidates of campaign %q: %w", f.Campaign, err)
	}
	defer rows.Close()
	var (
		cand                    Candidate
		c                       = &cand.Customer
		firstPurchase, lastPur  pgtype.Timestamptz
		sends                   int32
		lastOccurrence          pgtype.Timestamptz
		planned, active         bool
		ordersCount             int32
		createdAt, lastActiveAt time.Time
	)
	dest, attributesCol, err := bind(rows.FieldDescriptions(), map[string]any{
		"id": &c.ID, "email": &c.Email, "first_name": &c.FirstName, "timezone": &c.Timezone,
		"created_at": &createdAt, "attributes": nil, "orders_count": &ordersCount, "total_spent": &c.TotalSpent,
		"first_purchase_at": &firstPurchase, "last_purchase_at": &lastPur, "last_active_at": &lastActiveAt,
		"sends": &sends, "last_occurrence": &lastOccurrence, "planned": &planned, "active": &active,
	})
	if err != nil {
		return fmt.Errorf("candidates of campaign %q: %w", f.Campaign, err)
	}
	var attrs attrDecoder
	for rows.Next() {
		binary := rows.FieldDescriptions()[attributesCol].Format == pgx.BinaryFormatCode
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("candidates of campaign %q: %w", f.Campaign, err)
		}
		if _, out := optedOut[strings.ToLower(c.Email)]; out {
			continue
		}
		c.Subscribed = true
		c.Suppressed = false
		c.CreatedAt = createdAt.UTC()
		c.LastActiveAt = lastActiveAt.UTC()
		c.OrdersCount = int(ordersCount)
		c.FirstPurchaseAt = timePtr(firstPurchase)
		c.LastPurchaseAt = timePtr(lastPur)
		if f.SkipAttributes {
			c.Attributes = nil
		} else if c.Attributes, err = attrs.decode(rows.RawValues()[attributesCol], binary); err != nil {
			return fmt.Errorf("candidates of campaign %q: customer %q: %w", f.Campaign, c.ID, err)
		}
		cand.History = audience.History{Sends: int(sends), LastOccurrence: timePtr(lastOccurrence), Planned: planned, Active: active}
		if err := fn(&cand); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("candidates of campaign %q: %w", f.Campaign, err)
	}
	return nil
}

// optedOutAddresses returns the addresses people opted out from, lower
// case.
func (s *Store) optedOutAddresses(ctx context.Context) (map[string]struct{}, error) {
	rows, err := s.pool.Query(ctx, s.q.get(qOptedOutAddresses))
	if err != nil {
		return nil, fmt.Errorf("opted-out addresses: %w", err)
	}
	out := map[string]struct{}{}
	var email string
	_, err = pgx.ForEachRow(rows, []any{&email}, func() error {
		out[email] = struct{}{}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("opted-out addresses: %w", err)
	}
	return out, nil
}

// Customers calls fn for every customer in id order, with Suppressed set.
// The Customer is reused like Candidates' Candidate.
func (s *Store) Customers(ctx context.Context, fn func(*audience.Customer) error) error {
	rows, err := s.pool.Query(ctx, s.q.get(qCustomers))
	if err != nil {
		return fmt.Errorf("customers: %w", err)
	}
	return scanCustomers(rows, fn)
}

// Customer returns the customer id as it is now, with Suppressed set, or
// an error wrapping ErrNotFound.
func (s *Store) Customer(ctx context.Context, id string) (audience.Customer, error) {
	rows, err := s.pool.Query(ctx, s.q.get(qCustomer), id)
	if err != nil {
		return audience.Customer{}, fmt.Errorf("customer %q: %w", id, err)
	}
	var (
		out   audience.Customer
		found bool
	)
	err = scanCustomers(rows, func(c *audience.Customer) error {
		out, found = *c, true
		return nil
	})
	if err != nil {
		return audience.Customer{}, err
	}
	if !found {
		return audience.Customer{}, fmt.Errorf("customer %q: %w", id, ErrNotFound)
	}
	return out, nil
}

// scanCustomers calls fn for each row of a query with the columns of the
// customers query, reusing one Customer, and closes rows.
func scanCustomers(rows pgx.Rows, fn func(*audience.Customer) error) error {
	defer rows.Close()
	var (
		c                       audience.Customer
		firstPurchase, lastPur  pgtype.Timestamptz
		ordersCount             int32
		createdAt, lastActiveAt time.Time
	)
	dest, attributesCol, err := bind(rows.FieldDescriptions(), map[string]any{
		"id": &c.ID, "email": &c.Email, "first_name": &c.FirstName, "timezone": &c.Timezone,
		"subscribed": &c.Subscribed, "created_at": &createdAt, "attributes": nil, "orders_count": &ordersCount,
		"total_spent": &c.TotalSpent, "first_purchase_at": &firstPurchase, "last_purchase_at": &lastPur,
		"last_active_at": &lastActiveAt, "suppressed": &c.Suppressed,
	})
	if err != nil {
		return fmt.Errorf("customers: %w", err)
	}
	var attrs attrDecoder
	for rows.Next() {
		binary := rows.FieldDescriptions()[attributesCol].Format == pgx.BinaryFormatCode
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("customers: %w", err)
		}
		c.CreatedAt = createdAt.UTC()
		c.LastActiveAt = lastActiveAt.UTC()
		c.OrdersCount = int(ordersCount)
		c.FirstPurchaseAt = timePtr(firstPurchase)
		c.LastPurchaseAt = timePtr(lastPur)
		c.Attributes, err = attrs.decode(rows.RawValues()[attributesCol], binary)
		if err != nil {
			return fmt.Errorf("customer %q: %w", c.ID, err)
		}
		if err := fn(&c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("customers: %w", err)
	}
	return nil
}

// bind orders scan destinations by the query's column names, once per
// query: rows are then scanned positionally, without per-row reflection,
// yet a query whose columns change order still scans right, and one that
// loses or renames a column fails at once. The column whose destination is
// nil is left unscanned (the caller reads it raw); its index is returned,
// or -1.
func bind(fields []pgconn.FieldDescription, named map[string]any) (dest []any, raw int, err error) {
	if len(fields) != len(named) {
		return nil, -1, fmt.Errorf("query returns %d columns, want %d", len(fields), len(named))
	}
	dest, raw = make([]any, len(fields)), -1
	for i, f := range fields {
		d, ok := named[f.Name]
		if !ok {
			return nil, -1, fmt.Errorf("query returns column %q, which nothing scans", f.Name)
		}
		if d == nil {
			raw = i
		}
		dest[i] = d
	}
	return dest, raw, nil
}

// timePtr returns a new pointer to t's time in UTC, or nil when t is null.
func timePtr(t pgtype.Timestamptz) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

// decodeAttributes decodes a jsonb value as sent by the server; the empty
// object, by far the most common, decodes to nil without allocating.
func decodeAttributes(raw []byte, binary bool) (map[string]any, error) {
	if binary {
		if len(raw) == 0 || raw[0] != 1 {
			return nil, fmt.Errorf("attributes: unknown jsonb format")
		}
		raw = raw[1:]
	}
	if len(raw) == 2 && raw[0] == '{' && raw[1] == '}' {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("attributes: %w", err)
	}
	return m, nil
}

// attrDecoder decodes the attributes of the rows of one scan, and hands
// out one map for all rows whose attributes are the same bytes: most
// customers carry one of a few attribute sets (a plan, a tier), and
// decoding each anew cost more than the rest of the row (a quarter of a
// dry run's CPU, garbage collection included). Callers share those maps,
// so nothing may write to them; expressions and templates only read.
type attrDecoder struct {
	seen map[string]map[string]any
}

// Bounds of an attrDecoder: attribute sets held at most, and the longest
// held. Past them a row's attributes are decoded for that row alone.
const (
	attrDecoderSets = 256
	attrDecoderLen  = 256
)

func (d *attrDecoder) decode(raw []byte, binary bool) (map[string]any, error) {
	if m, ok := d.seen[string(raw)]; ok {
		return m, nil
	}
	m, err := decodeAttributes(raw, binary)
	if err != nil || m == nil || len(raw) > attrDecoderLen || len(d.seen) >= attrDecoderSets {
		return m, err
	}
	if d.seen == nil {
		d.seen = make(map[string]map[string]any)
	}
	d.seen[string(raw)] = m
	return m, nil
}

// Counts is how many rows each table holds.
type Counts struct {
	Customers    int
	Events       int
	Suppressions int
	Deliveries   int
}

// Counts counts the rows of every table.
func (s *Store) Counts(ctx context.Context) (Counts, error) {
	var n [4]int64
	if err := s.pool.QueryRow(ctx, s.q.get(qCounts)).Scan(&n[0], &n[1], &n[2], &n[3]); err != nil {
		return Counts{}, fmt.Errorf("count rows: %w", err)
	}
	return Counts{Customers: int(n[0]), Events: int(n[1]), Suppressions: int(n[2]), Deliveries: int(n[3])}, nil
}
