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
		for _, c := range set.Campaigns {
			checkTemplate(&errs, &c, tmpls, templatesDir)
		}
	}
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return &Content{Rules: rules, Templates: tmpls}, nil
}

// checkTemplate reports a campaign whose template is missing or does not
// render for a sample customer of each stage the campaign targets.
func checkTemplate(errs *campaign.Errors, c *campaign.Campaign, tmpls *mail.Templates, dir string) {
	name := c.Email.Template
	if name == "" {
		return // reported by campaign.Load
	}
	if tmpls == nil {
		return // the template set itself failed to load
	}
	if !tmpls.Has(name) {
		*errs = append(*errs, campaign.Error{Pos: c.Email.TemplatePos, Msg: fmt.Sprintf(
			"template %q not found: want %s and %s%s", name,
			filepath.Join(dir, name+".subject.tmpl"), filepath.Join(dir, name+".html.tmpl"),
			suggest.Hint(name, tmpls.Names(), strconv.Quote))})
		return
	}
	stages := c.Audience.Stages
	if len(stages) == 0 {
		stages = []string{""}
	}
	for _, stage := range stages {
		d := mail.SampleData()
		d.Campaign = c.Name
		if stage != "" {
			d.Stage = stage
		}
		if _, err := tmpls.Render(name, d); err != nil {
			*errs = append(*errs, campaign.Error{Pos: c.Email.TemplatePos, Msg: fmt.Sprintf(
				"template %q fails to render for a sample customer: %v", name, err)})
			return
		}
	}
}

func collect(errs *campaign.Errors, err error) bool {
	var ce campaign.Errors
	if errors.As(err, &ce) {
		*errs = append(*errs, ce...)
		return true
	}
	return false
}
