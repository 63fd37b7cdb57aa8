package campaign

import (
	"errors"
	"io/fs"
	"net/mail"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// SettingsFile is the name of the optional file of defaults for every
// campaign, in the same directory as the campaigns.
const SettingsFile = "settings.yaml"

// loadSettings reads the settings file; an absent file, or one holding
// nothing but comments, is the zero Settings.
func loadSettings(path string) (Settings, Errors) {
	st := Settings{File: path}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	src, rerr := readFile(path)
	if rerr != nil {
		return st, Errors{*rerr}
	}
	d := &decoder{file: path}
	body := d.document(src)
	if body == nil {
		if len(d.errs) == 1 && d.errs[0].Msg == "file is empty" {
			return st, nil
		}
		return st, d.errs
	}
	top, ok := d.mapping(body, "", settingsKeys...)
	if !ok {
		return st, d.errs
	}
	if f, ok := top["from"]; ok && f.value != nil {
		if t, ok := d.str(f.value, "from"); ok {
			if _, err := mail.ParseAddress(t.s); err != nil {
				d.errorf(t.pos, "from: %q is not an email address: %v", t.s, err)
			} else {
				st.From = t.s
			}
		}
	}
	if f, ok := top["frequency_cap"]; ok && f.value != nil {
		st.FrequencyCap = d.frequencyCap(f.value)
	}
	if f, ok := top["send_window"]; ok && f.value != nil {
		st.SendWindow = d.sendWindow(f.value, "send_window", false)
	}
	if f, ok := top["conversion_window"]; ok && f.value != nil {
		if w, ok := d.duration(f.value, "conversion_window"); ok {
			if w == 0 {
				d.errorf(d.pos(f.value), "conversion_window: must be more than 0")
			} else {
				st.ConversionWindow = w
			}
		}
	}
	if f, ok := top["soft_bounce_limit"]; ok && f.value != nil {
		st.SoftBounceLimit = d.softBounceLimit(f.value)
	}
	if f, ok := top["rate_limits"]; ok && f.value != nil {
		st.RateLimits = d.rateLimits(f.value)
	}
	if f, ok := top["tracking"]; ok && f.value != nil {
		st.Tracking = d.tracking(f.value)
	}
	return st, d.errs
}

// rateText is a rate as settings.yaml spells it: a count, a slash, and s,
// m or h.
var rateText = regexp.MustCompile(`^\s*([0-9]+)/([smh])\s*$`)

// domainName is a lower-case DNS name of at least two labels.
var domainName = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// maxRate is the most emails per unit settings accept: beyond it the
// interval between two emails would be below a microsecond, the limiter's
// resolution.
const maxRate = 1_000_000

func (d *decoder) rateLimits(n ast.Node) *RateLimits {
	rl := &RateLimits{Pos: d.pos(n)}
	fields, ok := d.mapping(n, "rate_limits", rateLimitKeys...)
	if !ok {
		return nil
	}
	good := true
	if f, ok := fields["global"]; ok && f.value != nil {
		if r, ok := d.rate(f.value, "rate_limits.global"); ok {
			rl.Global = &r
		} else {
			good = false
		}
	}
	if f, ok := fields["domains"]; ok && f.value != nil {
		doms, ok := d.domainRates(f.value)
		good = good && ok
		rl.Domains = doms
	}
	if !good {
		return nil
	}
	return rl
}

// domainRates reads rate_limits.domains, a mapping from recipient domain
// to rate. Domains are compared in lower case.
func (d *decoder) domainRates(n ast.Node) (map[string]Rate, bool) {
	m, ok := n.(*ast.MappingNode)
	if !ok {
		if mv, isOne := n.(*ast.MappingValueNode); isOne {
			m, ok = &ast.MappingNode{Values: []*ast.MappingValueNode{mv}}, true
		}
	}
	if !ok {
		d.expected(n, "rate_limits.domains", "a mapping of domain to rate")
		return nil, false
	}
	out := make(map[string]Rate, len(m.Values))
	seen := make(map[string]bool, len(m.Values))
	good := true
	for _, mv := range m.Values {
		kpos := d.pos(mv.Key)
		name, ok := keyName(mv.Key)
		if !ok || mv.Key.Type() == ast.MergeKeyType {
			d.errorf(kpos, "rate_limits.domains: unsupported key %s", describe(mv.Key))
			good = false
			continue
		}
		dom := strings.ToLower(strings.TrimSpace(name))
		if !domainName.MatchString(dom) || len(dom) > 253 {
			d.errorf(kpos, "rate_limits.domains: %q is not a domain name such as gmail.com", name)
			good = false
			continue
		}
		if seen[dom] {
			d.errorf(kpos, "rate_limits.domains: duplicate domain %q (domains are compared in lower case)", dom)
			good = false
			continue
		}
		seen[dom] = true
		path := "rate_limits.domains." + dom
		v := d.value(mv.Value)
		if _, null := v.(*ast.NullNode); null || v == nil {
			d.errorf(kpos, "%s: missing rate; write N/s, N/m or N/h (e.g. 20/s)", path)
			good = false
			continue
		}
		r, ok := d.rate(v, path)
		if !ok {
			good = false
			continue
		}
		out[dom] = r
	}
	return out, good
}

// rate reads N/s, N/m or N/h with N from 1 to maxRate.
func (d *decoder) rate(n ast.Node, path string) (Rate, bool) {
	s, ok := n.(*ast.StringNode)
	if !ok {
		d.expected(n, path, "a rate such as 20/s")
		return Rate{}, false
	}
	t, _ := d.str(s, path)
	m := rateText.FindStringSubmatch(t.s)
	if m == nil {
		d.errorf(t.pos, "%s: %q is not a rate; write N/s, N/m or N/h (e.g. 20/s)", path, t.s)
		return Rate{}, false
	}
	v, err := strconv.Atoi(m[1])
	if err != nil || v < 1 || v > maxRate {
		d.errorf(t.pos, "%s: %q: the count must be from 1 to %d", path, t.s, maxRate)
		return Rate{}, false
	}
	per := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[m[2]]
	return Rate{Pos: t.pos, N: v, Per: per}, true
}

func (d *decoder) frequencyCap(n ast.Node) *Cap {
	c := &Cap{Pos: d.pos(n)}
	fields, ok := d.mapping(n, "frequency_cap", frequencyCapKeys...)
	if !ok {
		return nil
	}
	good := true
	if f, ok := fields["max"]; !ok || f.value == nil {
		d.errorf(c.Pos, `missing required key "frequency_cap.max"`)
		good = false
	} else if v, ok := d.count(f.value, "frequency_cap.max"); !ok {
		good = false
	} else if v < 1 {
		d.errorf(d.pos(f.value), "frequency_cap.max: must be at least 1")
		good = false
	} else {
		c.Max = v
	}
	if f, ok := fields["per"]; !ok || f.value == nil {
		d.errorf(c.Pos, `missing required key "frequency_cap.per"`)
		good = false
	} else if v, ok := d.duration(f.value, "frequency_cap.per"); !ok {
		good = false
	} else if v == 0 {
		d.errorf(d.pos(f.value), "frequency_cap.per: must be more than 0")
		good = false
	} else {
		c.Per = v
	}
	if !good {
		return nil
	}
	return c
}

func (d *decoder) softBounceLimit(n ast.Node) *SoftBounceLimit {
	l := &SoftBounceLimit{Pos: d.pos(n)}
	fields, ok := d.mapping(n, "soft_bounce_limit", softBounceKeys...)
	if !ok {
		return nil
	}
	good := true
	if f, ok := fields["count"]; !ok || f.value == nil {
		d.errorf(l.Pos, `missing required key "soft_bounce_limit.count"`)
		good = false
	} else if v, ok := d.count(f.value, "soft_bounce_limit.count"); !ok {
		good = false
	} else if v < 1 {
		d.errorf(d.pos(f.value), "soft_bounce_limit.count: must be at least 1")
		good = false
	} else {
		l.Count = v
	}
	if f, ok := fields["per"]; !ok || f.value == nil {
		d.errorf(l.Pos, `missing required key "soft_bounce_limit.per"`)
		good = false
	} else if v, ok := d.duration(f.value, "soft_bounce_limit.per"); !ok {
		good = false
	} else if v == 0 {
		d.errorf(d.pos(f.value), "soft_bounce_limit.per: must be more than 0")
		good = false
	} else {
		l.Per = v
	}
	if !good {
		return nil
	}
	return l
}
