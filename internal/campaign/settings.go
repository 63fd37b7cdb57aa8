package campaign

import (
	"errors"
	"io/fs"
	"net/mail"
	"os"

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
	return st, d.errs
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
