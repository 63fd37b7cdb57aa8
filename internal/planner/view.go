package planner

import (
	"time"

	"nurture/internal/store"
)

// Delivery is a delivery row as `deliveries --json` prints it and the API
// returns it (DESIGN.md, "CLI, extended").
type Delivery struct {
	ID         string `json:"id"`
	Campaign   string `json:"campaign"`
	CustomerID string `json:"customer_id"`
	Occurrence string `json:"occurrence"`
	Step       int    `json:"step"`
	Variant    string `json:"variant,omitempty"`
	SendAt     string `json:"send_at"`
	Status     string `json:"status"`
	Reason     string `json:"reason"`
	Attempts   int    `json:"attempts"`
	MessageID  string `json:"message_id"`
	EventID    string `json:"event_id,omitempty"`
}

// ViewDelivery is d as Delivery, times in UTC.
func ViewDelivery(d *store.DeliveryRow) Delivery {
	return Delivery{ID: d.ID, Campaign: d.Campaign, CustomerID: d.CustomerID,
		Occurrence: d.Occurrence.UTC().Format(time.RFC3339), Step: d.Step, Variant: d.Variant,
		SendAt: d.SendAt.UTC().Format(time.RFC3339), Status: d.Status, Reason: d.Reason, Attempts: d.Attempts,
		MessageID: d.MessageID, EventID: d.EventID}
}

// StageChange is one recorded stage change: From is "" for the first
// recorded stage, and Entry says it counts as an entry for stage triggers.
type StageChange struct {
	From       string    `json:"from"`
	To         string    `json:"to"`
	ObservedAt time.Time `json:"observed_at"`
	Entry      bool      `json:"entry"`
}
