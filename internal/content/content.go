// Package content loads everything marketers edit (the lifecycle, campaigns
// and templates) as one checked unit. `nurture lint` prints its errors;
// serve and reload use a set only when it has none, so a bad edit never
// replaces a good set.
package content

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"nurture/internal/audience"
	"nurture/internal/campaign"
	"nurture/internal/mail"
	"nurture/internal/suggest"
)

// Content is a valid lifecycle, campaign set and template set.
type Content struct {
	Rules     *audience.Rules
	Templates *mail.Templates
}

// Campaigns is the campaign set the rules were compiled from.
func (c *Content) Campaigns() *campaign.Set { return c.Rules.Set() }

// Load reads and checks campaignsDir and templatesDir. On any problem it
// returns campaign.Errors listing all of them, sorted by file and position.
func Load(campaignsDir, templatesDir string) (*Content, error) {
	var errs campaign.Errors
	set, err := campaign.Load(campaignsDir)
	if err != nil {
		if !collect(&errs, err) {
			return nil, err
		}
	}
	tmpls, err := mail.LoadTemplates(templatesDir)
	if err != nil {
		var terrs mail.TemplateErrors
		if !errors.As(err, &terrs) {
			return nil, err
		}
		for _, te := range terrs {
			// Go's template parser gives a line without a column, and
			// whole-file problems have neither: point at the start.
			errs = append(errs, campaign.Error{Pos: campaign.Pos{File: te.File, Line: max(te.Line, 1), Col: max(te.Col, 1)}, Msg: te.Msg})
		}
	}
	var rules *audience.Rules
	if set != nil {
		rules, err = audience.Compile(set)
		if err != nil && !collect(&errs, err) {
			return nil, err
		}
		if tmpls != nil { // else the template set itself failed to load
			for i := range set.Campaigns {
				checkTemplates(&errs, &set.Campaigns[i], tmpls, templatesDir)
			}
		}
	}
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return &Content{Rules: rules, Templates: tmpls}, nil
}

// checkTemplates reports every template a campaign may send (its email's
// or each step's, and each variant's override) that is missing or does
// not render for a sample customer of each stage the campaign targets, at
// the position where the campaign names it; and each variant's subject
// that does not render, at the subject.
func checkTemplates(errs *campaign.Errors, c *campaign.Campaign, tmpls *mail.Templates, dir string) {
	checked := map[string]bool{}
	check := func(name string, pos campaign.Pos) {
		if name == "" || checked[name] {
			return // empty: reported by campaign.Load
		}
		checked[name] = true
		if !tmpls.Has(name) {
			*errs = append(*errs, campaign.Error{Pos: pos, Msg: fmt.Sprintf(
				"template %q not found: want %s and %s%s", name,
				filepath.Join(dir, name+".subject.tmpl"), filepath.Join(dir, name+".html.tmpl"),
				suggest.Hint(name, tmpls.Names(), strconv.Quote))})
			return
		}
		for _, d := range samples(c) {
			if _, err := tmpls.Render(name, d); err != nil {
				*errs = append(*errs, campaign.Error{Pos: pos, Msg: fmt.Sprintf(
					"template %q fails to render for a sample customer: %v", name, err)})
				return
			}
		}
	}
	check(c.Email.Template, c.Email.TemplatePos)
	for _, s := range c.Steps {
		check(s.Template, s.TemplatePos)
	}
	for _, v := range c.Variants {
		check(v.Template, v.TemplatePos)
	}
	for i, v := range c.Variants {
		if v.Subject == "" {
			continue
		}
		for _, d := range samples(c) {
			if _, err := mail.RenderSubject("", v.Subject, d); err != nil {
				*errs = append(*errs, subjectError(fmt.Sprintf("variants[%d].subject", i+1), v.SubjectPos, err))
				break
			}
		}
	}
}

// samples is a sample customer for each stage the campaign targets.
func samples(c *campaign.Campaign) []*mail.Data {
	stages := c.Audience.Stages
	if len(stages) == 0 {
		stages = []string{""}
	}
	var out []*mail.Data
	for _, stage := range stages {
		d := mail.SampleData()
		d.Campaign = c.Name
		if stage != "" {
			d.Stage = stage
		}
		out = append(out, d)
	}
	return out
}

// subjectError places an error in a variant's subject: at its column when
// the template package gives one (a subject is a single line), else at the
// subject's start.
func subjectError(key string, pos campaign.Pos, err error) campaign.Error {
	var te mail.TemplateError
	if !errors.As(err, &te) {
		return campaign.Error{Pos: pos, Msg: key + ": " + err.Error()}
	}
	if te.Line == 1 && te.Col > 0 {
		pos.Col += te.Col - 1
	}
	return campaign.Error{Pos: pos, Msg: key + ": " + te.Msg}
}

func collect(errs *campaign.Errors, err error) bool {
	var ce campaign.Errors
	if errors.As(err, &ce) {
		*errs = append(*errs, ce...)
		return true
	}
	return false
}
