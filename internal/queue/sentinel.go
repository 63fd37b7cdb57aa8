package queue

import (
	"context"
	"fmt"
)

// sentinelKey is a key nurture keeps in Redis to notice that Redis lost
// its data: it vanishes with everything else on a restart without
// persistence, a FLUSHALL, or a failover to an empty replica. (A restart
// with persistence keeps the tasks too, and needs no action; so the
// server's run id, which changes on every restart, is not used.)
const sentinelKey = "nurture:sentinel"

// Sentinel notices that Redis lost its data, so that the deliveries whose
// tasks went with it are enqueued again at once rather than after the
// reconciler's staleness period.
type Sentinel struct {
	c *Client
}

// NewSentinel returns a Sentinel over c's Redis.
func NewSentinel(c *Client) *Sentinel { return &Sentinel{c: c} }

// Check reports whether Redis lost its data since the last Check, by any
// process: the sentinel key was missing, and is set again. A Redis that
// nurture never used reports a loss once; a reconcile then finds nothing
// to do.
func (s *Sentinel) Check(ctx context.Context) (lost bool, why string, err error) {
	set, err := s.c.rdb.SetNX(ctx, sentinelKey, "1", 0).Result()
	if err != nil {
		return false, "", fmt.Errorf("check Redis sentinel key: %w", err)
	}
	if set {
		return true, "the key " + sentinelKey + " was missing", nil
	}
	return false, "", nil
}
