package main

import (
	"fmt"

	"nurture/internal/campaign"
	"nurture/internal/tracking"
)

// tracking returns the tracking links configured (PUBLIC_URL and SECRET),
// or nil when no public URL is set. Call after parse.
func (m *mailFlags) tracking() (*tracking.Links, error) {
	if m.unsubscribeURL == "" {
		return nil, nil
	}
	links, err := tracking.New(tracking.Config{BaseURL: m.unsubscribeURL, Secret: m.a.env("SECRET", m.a.getenv("UNSUBSCRIBE_SECRET"))})
	if err != nil {
		return nil, fmt.Errorf("--unsubscribe-url: %w (set SECRET)", err)
	}
	return links, nil
}

// untrackedCampaign is a campaign that asks for tracking when none is
// configured: its emails go out without the pixel and the click
// redirects.
type untrackedCampaign struct {
	pos      campaign.Pos // where the file asks for tracking
	campaign string
	what     string // "opens", "clicks" or "opens and clicks"
}

func (u untrackedCampaign) String() string {
	return fmt.Sprintf("%s: campaign %q tracks %s, but PUBLIC_URL is not set: its emails go out untracked; set PUBLIC_URL and SECRET",
		u.pos, u.campaign, u.what)
}

// untracked lists the enabled campaigns of set that ask for tracking.
func untracked(set *campaign.Set) []untrackedCampaign {
	var out []untrackedCampaign
	for _, c := range set.Tracked() {
		pos := campaign.Pos{File: c.File, Line: c.NamePos.Line, Col: c.NamePos.Col}
		if c.Tracking != nil {
			pos = c.Tracking.Pos
		} else if set.Settings.Tracking != nil {
			pos = set.Settings.Tracking.Pos
		}
		out = append(out, untrackedCampaign{pos: pos, campaign: c.Name, what: campaign.EffectiveTracking(c, &set.Settings).String()})
	}
	return out
}
