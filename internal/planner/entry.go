package planner

import (
	"context"
	"time"

	"nurture/internal/audience"
)

// Entry is one customer entering a triggered campaign at its start time:
// an event's due time, or an observed stage entry plus the delay. It has
// passed the audience rules, trigger.where and exit_when at the
// evaluation instant.
type Entry struct {
	Customer audience.Customer
	// Stage is the customer's stage at the evaluation instant.
	Stage string
	// Start is the entry's start time, the occurrence of its deliveries.
	Start time.Time
	// EventID is the triggering event's id; "" for a stage entry.
	EventID string
	// Event is the triggering event; nil for a stage entry.
	Event *audience.Event
}

// enterJourneys starts the journeys of a triggered campaign that is a
// journey (t.Campaign.IsJourney()) for the given entries. Journeys are
// planned by journey.go; until then a triggered journey plans nothing.
func (p *Planner) enterJourneys(ctx context.Context, rules *audience.Rules, t *audience.Target, entries []Entry) error {
	return nil
}
