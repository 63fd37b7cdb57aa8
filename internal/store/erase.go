package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErasureSource says who asked for an erasure; it is the only thing the
// erasure log keeps about the request.
type ErasureSource string

// Sources of an erasure.
const (
	ErasedByAPI ErasureSource = "api"
	ErasedByCLI ErasureSource = "cli"
)

// ErasedPrefix starts the opaque token that takes an erased customer's id
// in the rows kept for counting: "erased-" and 32 random hex digits, drawn
// anew for each erasure and kept nowhere else, so nothing leads from the
// token back to the id.
const ErasedPrefix = "erased-"

// Erasure is what Erase did.
type Erasure struct {
	// Customer says a customer row existed: it is deleted and its address
	// is suppressed by hash.
	Customer bool
	// Deliveries counts the person's deliveries, kept for the campaigns'
	// counts under the token; Cancelled counts those of them not claimed
	// by a worker yet, now skipped with the reason "erased".
	Deliveries, Cancelled int
	// Sending counts deliveries a worker was sending when the person was
	// erased: Erase waited for their outcome. StillSending counts those
	// of them still unfinished when it stopped waiting
	// (Config.ErasureWait); such an email may yet go out.
	Sending, StillSending int
	// Events are kept without properties, Journeys (unfinished ones
	// exited) and ConsentChanges as they were, all under the token.
	Events, Journeys, ConsentChanges int
	// StageChanges counts the stage history deleted.
	StageChanges int
}

// Erase erases the person whose customer id is id, for source: the
// customer row (address, name, attributes, facts), their stage history,
// their clear-text entries on the suppression and opt-out lists, and what
// the rows kept for counting say about them. Deliveries, journeys, events
// and consent changes stay, pointing to an opaque token instead of the
// id; events lose their properties and their caller-given ids, deliveries
// their SMTP replies and error texts. Deliveries not yet claimed by a
// worker are skipped ("erased"). The address is added to the erased
// addresses as its SHA-256 (lower-cased, unkeyed), so that no campaign
// plans or sends to it again under any customer id.
//
// All of this is one transaction, which waits for a running import or
// stage sweep. Then Erase waits, up to Config.ErasureWait, for deliveries
// a worker was sending at that moment, so that when it returns no email
// to the person is still on its way (see Erasure.StillSending).
//
// An id of which nothing is stored is an error wrapping ErrNotFound;
// erasing an erased id is one too, and changes nothing.
func (s *Store) Erase(ctx context.Context, id string, source ErasureSource) (Erasure, error) {
	var res Erasure
	if source != ErasedByAPI && source != ErasedByCLI {
		return res, fmt.Errorf("erase customer %q: unknown source %q", id, source)
	}
	if id == "" {
		return res, fmt.Errorf("erase customer: empty id: %w", ErrNotFound)
	}
	token, err := erasedToken()
	if err != nil {
		return res, fmt.Errorf("erase customer %q: %w", id, err)
	}
	now := s.cfg.Now()
	var sending []string
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Imports and sweeps write customers and their stages: one that
		// started before would otherwise write the id again after.
		if _, err := tx.Exec(ctx, s.q.get(qImportLock)); err != nil {
			return fmt.Errorf("wait for imports: %w", err)
		}
		if _, err := tx.Exec(ctx, s.q.get(qSweepLock)); err != nil {
			return fmt.Errorf("wait for the stage sweep: %w", err)
		}
		if err := tx.QueryRow(ctx, s.q.get(qEraseCustomer), id, now).Scan(&res.Customer); err != nil {
			return fmt.Errorf("customer row: %w", err)
		}
		rows, err := tx.Query(ctx, s.q.get(qEraseDeliveries), id, token, now)
		if err != nil {
			return fmt.Errorf("deliveries: %w", err)
		}
		var did, status string
		var cancelled bool
		_, err = pgx.ForEachRow(rows, []any{&did, &status, &cancelled}, func() error {
			res.Deliveries++
			switch {
			case cancelled:
				res.Cancelled++
			case status == StatusSending:
				sending = append(sending, did)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("deliveries: %w", err)
		}
		for _, step := range []struct {
			what, query string
			n           *int
			args        []any
		}{
			{"journeys", qEraseJourneys, &res.Journeys, []any{id, token, now}},
			{"events", qEraseEvents, &res.Events, []any{id, token}},
			{"consent history", qEraseConsent, &res.ConsentChanges, []any{id, token}},
			{"stage history", qEraseStages, &res.StageChanges, []any{id}},
			{"links clicked", qEraseClicks, new(int), []any{token}},
		} {
			tag, err := tx.Exec(ctx, s.q.get(step.query), step.args...)
			if err != nil {
				return fmt.Errorf("%s: %w", step.what, err)
			}
			*step.n = int(tag.RowsAffected())
		}
		if !res.Customer && res.Deliveries == 0 && res.Journeys == 0 && res.Events == 0 &&
			res.ConsentChanges == 0 && res.StageChanges == 0 {
			return ErrNotFound
		}
		_, err = tx.Exec(ctx, s.q.get(qEraseLog), now, string(source), res.Customer,
			res.Deliveries, res.Events, res.Journeys, res.ConsentChanges, res.StageChanges)
		if err != nil {
			return fmt.Errorf("log: %w", err)
		}
		return nil
	})
	if err != nil {
		return Erasure{}, fmt.Errorf("erase customer %q: %w", id, err)
	}
	res.Sending = len(sending)
	if len(sending) > 0 {
		left, err := s.waitSent(ctx, sending)
		res.StillSending = len(left)
		if err != nil {
			return res, fmt.Errorf("erase customer %q: wait for %d deliveries being sent: %w", id, len(sending), err)
		}
	}
	return res, nil
}

// erasureWaitPoll is how often Erase looks at deliveries being sent.
const erasureWaitPoll = 50 * time.Millisecond

// waitSent waits until no delivery of ids is sending any more, or
// Config.ErasureWait has passed, then blanks the texts their outcomes
// wrote. It returns those still sending.
func (s *Store) waitSent(ctx context.Context, ids []string) ([]string, error) {
	wctx, cancel := context.WithTimeout(ctx, s.cfg.ErasureWait)
	defer cancel()
	pending := ids
wait:
	for {
		statuses, err := s.Statuses(ctx, pending)
		if err != nil {
			return pending, err
		}
		var still []string
		for _, id := range pending {
			if statuses[id] == StatusSending {
				still = append(still, id)
			}
		}
		if pending = still; len(pending) == 0 {
			break
		}
		select {
		case <-wctx.Done():
			if err := ctx.Err(); err != nil {
				return pending, err
			}
			break wait
		case <-time.After(erasureWaitPoll):
		}
	}
	if _, err := s.pool.Exec(ctx, s.q.get(qEraseScrub), ids); err != nil {
		return pending, fmt.Errorf("blank the outcomes' texts: %w", err)
	}
	return pending, nil
}

// erasedToken draws the token that replaces an erased customer's id.
func erasedToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("draw a token: %w", err)
	}
	return ErasedPrefix + hex.EncodeToString(b), nil
}

// IsErasedID reports whether a customer id is the token of an erased
// person, as deliveries and journeys of erased people carry.
func IsErasedID(id string) bool { return strings.HasPrefix(id, ErasedPrefix) }
