package planner

import (
	"time"

	"nurture/internal/audience"
)

// Entry is one customer entering a triggered campaign at its start time:
// an event's due time, or an observed stage entry plus the delay. It has
// passed the audience rules, trigger.where and exit_when at the
// evaluation instant.
type Entry struct {
	Customer audience.Customer
	// Facts are the customer's facts at the evaluation instant, with
	// their stage and the event.
	Facts audience.Facts
	// Start is the entry's start time, the occurrence of its deliveries.
	Start time.Time
	// EventID is the triggering event's id; "" for a stage entry.
	EventID string
	// Event is the triggering event; nil for a stage entry.
	Event *audience.Event
}
