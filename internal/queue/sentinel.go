package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// sentinelKey is a key nurture keeps in Redis to notice that Redis lost
// its data: it vanishes with everything else on a restart without
// persistence, a FLUSHALL, or a failover to an empty replica. (A restart
// with persistence keeps the tasks too, and needs no action; so the
// server's run id, which changes on every restart, is not used.)
//
// Its value is "pending:TOKEN" from the moment a loss is noticed until Recovered
// is called, so that a loss whose recovery failed, or whose leader died
// midway, is recovered by the next check of any process.
const sentinelKey = "nurture:sentinel"

const (
	sentinelPending = "pending"
	sentinelOK      = "ok"
)

// Sentinel notices that Redis lost its data, so that the deliveries whose
// tasks went with it are enqueued again at once rather than after the
// reconciler's staleness period.
type Sentinel struct {
	c       *Client
	pending string // the pending value the last Check saw
}

// NewSentinel returns a Sentinel over c's Redis.
func NewSentinel(c *Client) *Sentinel { return &Sentinel{c: c} }

// Loss is what Check found.
type Loss int

// Check's findings.
const (
	NoLoss      Loss = iota // nothing lost, or lost and recovered
	NewLoss                 // the sentinel key was missing: Redis lost its data
	PendingLoss             // a loss noticed earlier is not yet recovered
)

// Check reports whether Redis lost its data and the loss is not yet
// recovered: the sentinel key was missing (it is set again, as pending), or
// it is still pending. A Redis that nurture never used reports a loss
// once; a reconcile then finds nothing to do.
func (s *Sentinel) Check(ctx context.Context) (Loss, error) {
	for {
		mark := sentinelPending + ":" + strconv.FormatInt(rand.Int64(), 36)
		set, err := s.c.rdb.SetNX(ctx, sentinelKey, mark, 0).Result()
		if err != nil {
			return NoLoss, fmt.Errorf("check Redis sentinel key: %w", err)
		}
		if set {
			s.pending = mark
			return NewLoss, nil
		}
		v, err := s.c.rdb.Get(ctx, sentinelKey).Result()
		switch {
		case errors.Is(err, redis.Nil):
			continue // lost again in between
		case err != nil:
			return NoLoss, fmt.Errorf("check Redis sentinel key: %w", err)
		case strings.HasPrefix(v, sentinelPending):
			s.pending = v
			return PendingLoss, nil
		}
		return NoLoss, nil
	}
}

// markRecovered sets the key to ok only while it still holds the pending
// mark this process saw: a loss that happened since (the key gone, or
// marked anew) must not be hidden.
var markRecovered = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("SET", KEYS[1], ARGV[2])
end
return false`)

// Recovered marks the loss reported by the last Check as recovered.
func (s *Sentinel) Recovered(ctx context.Context) error {
	err := markRecovered.Run(ctx, s.c.rdb, []string{sentinelKey}, s.pending, sentinelOK).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("mark Redis loss recovered: %w", err)
	}
	return nil
}
