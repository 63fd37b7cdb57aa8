package queue

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// journalKey is the Redis hash of outcomes waiting for PostgreSQL: field =
// delivery id, value = the encoded outcome.
const journalKey = "nurture:outcomes"

// Journal keeps the outcomes of sends that PostgreSQL could not take at
// the time, so that a database outage never turns into a second send: a
// worker writes the outcome here, acknowledges its task, and the outcome
// is applied to the delivery row once the database is back (by a drain
// loop, or by the next claim of the same delivery, which reads the journal
// before it sends). Values are opaque to the journal.
type Journal struct {
	rdb redis.UniversalClient
}

// NewJournal returns the journal kept in rdb, which it does not close.
func NewJournal(rdb redis.UniversalClient) *Journal { return &Journal{rdb: rdb} }

// Client is the Redis client the journal is kept with; the worker's
// send-rate throttles share it.
func (j *Journal) Client() redis.UniversalClient { return j.rdb }

// Put keeps value for delivery id, replacing any earlier value.
func (j *Journal) Put(ctx context.Context, id string, value []byte) error {
	if err := j.rdb.HSet(ctx, journalKey, id, value).Err(); err != nil {
		return fmt.Errorf("keep outcome of delivery %s in Redis: %w", id, err)
	}
	return nil
}

// Get returns the values kept for ids; ids without one are absent.
func (j *Journal) Get(ctx context.Context, ids []string) (map[string][]byte, error) {
	out := map[string][]byte{}
	if len(ids) == 0 {
		return out, nil
	}
	vals, err := j.rdb.HMGet(ctx, journalKey, ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("read kept outcomes from Redis: %w", err)
	}
	for i, v := range vals {
		if s, ok := v.(string); ok {
			out[ids[i]] = []byte(s)
		}
	}
	return out, nil
}

// Delete forgets the values of ids.
func (j *Journal) Delete(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := j.rdb.HDel(ctx, journalKey, ids...).Err(); err != nil {
		return fmt.Errorf("forget kept outcomes in Redis: %w", err)
	}
	return nil
}

// Len is the number of values kept.
func (j *Journal) Len(ctx context.Context) (int, error) {
	n, err := j.rdb.HLen(ctx, journalKey).Result()
	if err != nil {
		return 0, fmt.Errorf("count kept outcomes in Redis: %w", err)
	}
	return int(n), nil
}

// Scan returns about limit kept values from cursor on (0 starts a pass),
// and the cursor to go on from, 0 when the pass is complete. A value may be
// returned twice in one pass.
func (j *Journal) Scan(ctx context.Context, cursor uint64, limit int) (map[string][]byte, uint64, error) {
	kv, next, err := j.rdb.HScan(ctx, journalKey, cursor, "", int64(limit)).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("read kept outcomes from Redis: %w", err)
	}
	out := make(map[string][]byte, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = []byte(kv[i+1])
	}
	return out, next, nil
}
