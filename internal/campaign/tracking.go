package campaign

import "github.com/goccy/go-yaml/ast"

// Tracking says which results of a campaign's emails are measured: opens
// (a pixel in the HTML part) and clicks (links rewritten to pass through
// the HTTP role). A key left out takes the settings' default, and false
// when settings.yaml says nothing either.
type Tracking struct {
	Pos Pos
	// Opens and Clicks are nil when the file does not set them.
	Opens, Clicks *bool
}

// Track is a campaign's effective tracking.
type Track struct {
	Opens, Clicks bool
}

// String names what is tracked: "opens", "clicks", "opens and clicks" or
// "nothing".
func (t Track) String() string {
	switch {
	case t.Opens && t.Clicks:
		return "opens and clicks"
	case t.Opens:
		return "opens"
	case t.Clicks:
		return "clicks"
	}
	return "nothing"
}

// Any reports whether anything is tracked.
func (t Track) Any() bool { return t.Opens || t.Clicks }

var trackingKeys = []string{"opens", "clicks"}

// EffectiveTracking is what c's emails track: each key of the campaign's
// own tracking, else of settings' (nil: none), else false.
func EffectiveTracking(c *Campaign, settings *Settings) Track {
	var t Track
	pick := func(own, def *bool) bool {
		switch {
		case own != nil:
			return *own
		case def != nil:
			return *def
		}
		return false
	}
	var own, def Tracking
	if c.Tracking != nil {
		own = *c.Tracking
	}
	if settings != nil && settings.Tracking != nil {
		def = *settings.Tracking
	}
	t.Opens = pick(own.Opens, def.Opens)
	t.Clicks = pick(own.Clicks, def.Clicks)
	return t
}

// Tracked returns the enabled campaigns of s that track opens or clicks.
func (s *Set) Tracked() []*Campaign {
	var out []*Campaign
	for i := range s.Campaigns {
		c := &s.Campaigns[i]
		if c.Enabled && EffectiveTracking(c, &s.Settings).Any() {
			out = append(out, c)
		}
	}
	return out
}

func (d *decoder) tracking(n ast.Node) *Tracking {
	t := &Tracking{Pos: d.pos(n)}
	fields, ok := d.mapping(n, "tracking", trackingKeys...)
	if !ok {
		return nil
	}
	for _, k := range []struct {
		key string
		dst **bool
	}{{"opens", &t.Opens}, {"clicks", &t.Clicks}} {
		key, dst := k.key, k.dst
		if f, ok := fields[key]; ok && f.value != nil {
			if b, ok := d.boolean(f.value, "tracking."+key); ok {
				*dst = &b
			}
		}
	}
	return t
}
