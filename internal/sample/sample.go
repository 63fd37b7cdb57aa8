// Package sample generates a deterministic audience of customers and their
// events, spread over every lifecycle stage of the shipped lifecycle, as
// JSON Lines in the import format. The demo, benchmarks and tests use it.
package sample

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"
)

// Profile is the kind of customer generated; each maps to one shipped stage.
type Profile int

// Profiles, in the order customers cycle through them.
const (
	New Profile = iota
	Prospect
	Active
	RecentBuyer // active, with a purchase in the last two days
	Loyal
	Advocate
	AtRisk
	Lapsed
	numProfiles
)

var profileNames = [...]string{"new", "prospect", "active", "recent_buyer", "loyal", "advocate", "at_risk", "lapsed"}

func (p Profile) String() string { return profileNames[p] }

// ProfileOf is the profile of the i-th customer (0-based) Write generates.
func ProfileOf(i int) Profile { return Profile(i % int(numProfiles)) }

type customer struct {
	ID         string         `json:"id"`
	Email      string         `json:"email"`
	FirstName  string         `json:"first_name"`
	Timezone   string         `json:"timezone"`
	Subscribed bool           `json:"subscribed"`
	CreatedAt  time.Time      `json:"created_at"`
	Attributes map[string]any `json:"attributes"`
}

type event struct {
	ID         string         `json:"id"`
	CustomerID string         `json:"customer_id"`
	Type       string         `json:"type"`
	OccurredAt time.Time      `json:"occurred_at"`
	Amount     *float64       `json:"amount,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
}

var (
	firstNames = []string{"Ann", "Bo", "Chloé", "Dev", "Emeka", "Fatima", "Goran", "Hana", "Ines", "Jun", "Kofi", "Lena", "Mateo", "Nia", "Oskar", "Priya"}
	zones      = []string{"UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "America/Sao_Paulo"}
	plans      = []string{"free", "pro", "pro", "enterprise"}
)

// Write writes n customers to customers and their events to events, as of
// the instant at. The same seed, n and at give the same bytes.
func Write(customers, events io.Writer, n int, seed uint64, at time.Time) error {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	cw, ew := bufio.NewWriterSize(customers, 1<<16), bufio.NewWriterSize(events, 1<<16)
	cenc, eenc := json.NewEncoder(cw), json.NewEncoder(ew)
	at = at.UTC().Truncate(time.Second)
	day := 24 * time.Hour
	for i := range n {
		p := ProfileOf(i)
		id := fmt.Sprintf("c%07d", i+1)
		c := customer{
			ID:         id,
			Email:      fmt.Sprintf("customer%07d@example.com", i+1),
			FirstName:  firstNames[rng.IntN(len(firstNames))],
			Timezone:   zones[rng.IntN(len(zones))],
			Subscribed: true,
			Attributes: map[string]any{"plan": plans[rng.IntN(len(plans))]},
		}
		// Ages and inactivity are chosen inside each stage's bounds, away
		// from the edges, so stages do not depend on the time of day.
		var orders int
		var lastActive time.Time
		switch p {
		case New:
			c.CreatedAt = at.Add(-time.Duration(1+rng.IntN(12))*day - time.Hour)
			lastActive = c.CreatedAt.Add(time.Hour)
		case Prospect:
			c.CreatedAt = at.Add(-time.Duration(20+rng.IntN(200)) * day)
			lastActive = at.Add(-time.Duration(1+rng.IntN(25)) * day)
		case Active:
			c.CreatedAt = at.Add(-time.Duration(60+rng.IntN(600)) * day)
			orders = 1 + rng.IntN(4)
			lastActive = at.Add(-time.Duration(5+rng.IntN(20)) * day)
		case RecentBuyer:
			c.CreatedAt = at.Add(-time.Duration(60+rng.IntN(600)) * day)
			orders = 1 + rng.IntN(3)
			lastActive = at.Add(-time.Duration(2+rng.IntN(30)) * time.Hour)
		case Loyal:
			c.CreatedAt = at.Add(-time.Duration(200+rng.IntN(600)) * day)
			orders = 5 + rng.IntN(4)
			lastActive = at.Add(-time.Duration(3+rng.IntN(20)) * day)
		case Advocate:
			c.CreatedAt = at.Add(-time.Duration(300+rng.IntN(600)) * day)
			orders = 10 + rng.IntN(10)
			lastActive = at.Add(-time.Duration(3+rng.IntN(20)) * day)
		case AtRisk:
			c.CreatedAt = at.Add(-time.Duration(200+rng.IntN(600)) * day)
			orders = 1 + rng.IntN(6)
			lastActive = at.Add(-time.Duration(31+rng.IntN(27))*day - time.Hour)
		case Lapsed:
			c.CreatedAt = at.Add(-time.Duration(300+rng.IntN(600)) * day)
			orders = 1 + rng.IntN(6)
			lastActive = at.Add(-time.Duration(91+rng.IntN(200))*day - time.Hour)
		}
		if err := cenc.Encode(&c); err != nil {
			return err
		}
		// Purchases spread between sign-up and the last activity, the
		// last one at lastActive; small amounts keep loyal/advocate
		// decided by the order count.
		span := lastActive.Sub(c.CreatedAt)
		for k := range orders {
			t := lastActive
			if k < orders-1 {
				t = c.CreatedAt.Add(time.Duration(rng.Int64N(int64(span) + 1)))
			}
			amount := float64(10+rng.IntN(40)) + float64(rng.IntN(100))/100
			e := event{ID: fmt.Sprintf("%s-o%d", id, k+1), CustomerID: id, Type: "purchase", OccurredAt: t, Amount: &amount}
			if err := eenc.Encode(&e); err != nil {
				return err
			}
		}
		if orders == 0 && lastActive.After(c.CreatedAt) {
			e := event{ID: id + "-v1", CustomerID: id, Type: "page_view", OccurredAt: lastActive,
				Properties: map[string]any{"path": "/pricing"}}
			if err := eenc.Encode(&e); err != nil {
				return err
			}
		}
	}
	if err := cw.Flush(); err != nil {
		return err
	}
	return ew.Flush()
}

// WriteFiles is Write into two new files, customers and events.
func WriteFiles(customersPath, eventsPath string, n int, seed uint64, at time.Time) error {
	cf, err := os.Create(customersPath)
	if err != nil {
		return err
	}
	ef, err := os.Create(eventsPath)
	if err != nil {
		cf.Close()
		return err
	}
	err = Write(cf, ef, n, seed, at)
	return errors.Join(err, cf.Close(), ef.Close())
}
