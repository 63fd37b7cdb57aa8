// Package experiment assigns customers to a campaign's variants and
// holdout: a deterministic function of (campaign, customer id), so the
// same customer is in the same group at every entry and in every process,
// with no state to store or share.
package experiment

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Holdout is the group name of held-out entries; variants may not use it.
const Holdout = "holdout"

// Variant is one arm of an experiment.
type Variant struct {
	Name   string
	Weight int // > 0; shares follow the weights
}

// Plan is a campaign's experiment.
type Plan struct {
	Campaign string
	Variants []Variant // may be empty: no variants
	// HoldoutBasisPoints is the share of entries held out, in 1/10000
	// (10% is 1000).
	HoldoutBasisPoints int
}

// Validate reports a plan that cannot assign.
func (p Plan) Validate() error {
	if p.HoldoutBasisPoints < 0 || p.HoldoutBasisPoints > 10000 {
		return fmt.Errorf("holdout must be between 0%% and 100%%")
	}
	seen := map[string]bool{}
	for _, v := range p.Variants {
		switch {
		case v.Name == Holdout:
			return fmt.Errorf("variant name %q is reserved", Holdout)
		case seen[v.Name]:
			return fmt.Errorf("variant %q is named twice", v.Name)
		case v.Weight <= 0:
			return fmt.Errorf("variant %q: weight must be at least 1", v.Name)
		}
		seen[v.Name] = true
	}
	return nil
}

// Assign returns the customer's group: Holdout, a variant's name, or ""
// when the campaign has neither. Holdout and variant come from two
// independent draws, so the variants' shares among the entries that are
// sent do not depend on the holdout.
func (p Plan) Assign(customerID string) string {
	if p.HoldoutBasisPoints > 0 && draw(p.Campaign, customerID, "holdout")%10000 < uint64(p.HoldoutBasisPoints) {
		return Holdout
	}
	total := 0
	for _, v := range p.Variants {
		total += v.Weight
	}
	if total == 0 {
		return ""
	}
	x := draw(p.Campaign, customerID, "variant") % uint64(total)
	for _, v := range p.Variants {
		if x < uint64(v.Weight) {
			return v.Name
		}
		x -= uint64(v.Weight)
	}
	return p.Variants[len(p.Variants)-1].Name // unreachable
}

// draw is a uniform 64-bit number for (campaign, customer, purpose). The
// parts are length-prefixed so that no two tuples hash alike.
func draw(campaign, customerID, purpose string) uint64 {
	h := sha256.New()
	for _, s := range []string{campaign, customerID, purpose} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return binary.BigEndian.Uint64(h.Sum(nil)[:8])
}
