// Package audience computes customer facts, evaluates lifecycle stages and
// decides whether a customer is in a campaign's audience. Expressions are
// compiled once per campaign set with expr-lang/expr.
package audience

import (
	"time"
)

// Customer is a customer as stored, with facts derived from events.
type Customer struct {
	ID              string
	Email           string
	FirstName       string
	Timezone        string
	Subscribed      bool
	Suppressed      bool // the email address is on the suppression list
	CreatedAt       time.Time
	Attributes      map[string]any // read only: customers read by one scan may share it
	OrdersCount     int
	TotalSpent      float64
	FirstPurchaseAt *time.Time
	LastPurchaseAt  *time.Time
	LastActiveAt    time.Time
}

// Facts is the environment expressions are evaluated in: a customer's facts
// at one instant. Field tags give the names used in YAML expressions.
//
// days_since_purchase is nil for a customer who never bought, and comparing
// nil with a number fails at run time, so expressions test it first:
// "days_since_purchase != nil && days_since_purchase <= 3". A missing
// attribute is nil, which compares unequal to any string.
type Facts struct {
	ID                string         `expr:"id"`
	Email             string         `expr:"email"`
	FirstName         string         `expr:"first_name"`
	Timezone          string         `expr:"timezone"`
	Subscribed        bool           `expr:"subscribed"`
	OrdersCount       int            `expr:"orders_count"`
	TotalSpent        float64        `expr:"total_spent"`
	InactiveDays      int            `expr:"inactive_days"`
	DaysSinceSignup   int            `expr:"days_since_signup"`
	DaysSincePurchase *int           `expr:"days_since_purchase"` // nil without a purchase
	Attributes        map[string]any `expr:"attributes"`
	// Stage is empty while stages are being evaluated.
	Stage string `expr:"stage"`
	// Now is the evaluation instant (the tick, or --at), never the wall
	// clock.
	Now             time.Time  `expr:"now"`
	CreatedAt       time.Time  `expr:"created_at"`
	LastActiveAt    time.Time  `expr:"last_active_at"`
	FirstPurchaseAt *time.Time `expr:"first_purchase_at"` // nil without a purchase
	LastPurchaseAt  *time.Time `expr:"last_purchase_at"`  // nil without a purchase
	// Event is the event that triggered the campaign: set only for a
	// triggered campaign's trigger.where and exit_when.
	Event *Event `expr:"event"`
}

// Event is an event as expressions see it.
type Event struct {
	ID         string         `expr:"id"`
	Type       string         `expr:"type"`
	OccurredAt time.Time      `expr:"occurred_at"`
	Amount     *float64       `expr:"amount"` // nil when the event has none
	Properties map[string]any `expr:"properties"`
}

// History is a customer's past deliveries of one campaign.
type History struct {
	// Sends counts deliveries in any status but failed and skipped.
	Sends int
	// LastOccurrence is the latest occurrence strictly before the
	// evaluation instant, or nil.
	LastOccurrence *time.Time
	// Planned says a delivery of this campaign at the evaluation instant
	// itself exists already (in any status): the tick at that occurrence
	// has run, and running it again adds nothing.
	Planned bool
	// Active says a journey of this campaign is unfinished for the
	// customer (journeys only); Sends then counts entries.
	Active bool
}

// Days is floor(d / 24h) for the durations facts are made of.
func Days(d time.Duration) int {
	days := d / (24 * time.Hour)
	if d < 0 && d%(24*time.Hour) != 0 {
		days--
	}
	return int(days)
}

// FactsAt returns c's facts at now.
func FactsAt(c *Customer, now time.Time) Facts {
	f := Facts{
		ID:              c.ID,
		Email:           c.Email,
		FirstName:       c.FirstName,
		Timezone:        c.Timezone,
		Subscribed:      c.Subscribed,
		OrdersCount:     c.OrdersCount,
		TotalSpent:      c.TotalSpent,
		InactiveDays:    Days(now.Sub(c.LastActiveAt)),
		DaysSinceSignup: Days(now.Sub(c.CreatedAt)),
		Attributes:      c.Attributes,
		Now:             now,
		CreatedAt:       c.CreatedAt,
		LastActiveAt:    c.LastActiveAt,
		FirstPurchaseAt: c.FirstPurchaseAt,
		LastPurchaseAt:  c.LastPurchaseAt,
	}
	if f.Attributes == nil {
		f.Attributes = map[string]any{}
	}
	if c.LastPurchaseAt != nil {
		d := Days(now.Sub(*c.LastPurchaseAt))
		f.DaysSincePurchase = &d
	}
	return f
}
