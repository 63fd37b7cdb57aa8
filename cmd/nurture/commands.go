package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/mail"
	"os"
	"strings"
	"time"

	"nurture/internal/audience"
	"nurture/internal/campaign"
	"nurture/internal/content"
	"nurture/internal/importer"
	"nurture/internal/planner"
	"nurture/internal/store"
)

func (a *app) migrate(ctx context.Context, args []string) error {
	fs := a.flags("migrate")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	applied, err := store.Migrate(ctx, a.databaseURL, a.log)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(a.stdout, "database is up to date")
	}
	for _, m := range applied {
		fmt.Fprintln(a.stdout, "applied", m)
	}
	return nil
}

func (a *app) lint(_ context.Context, args []string) error {
	fs := a.flags("lint")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	c, err := content.Load(a.campaignsDir, a.templatesDir)
	if err != nil {
		var errs campaign.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				fmt.Fprintln(a.stdout, e.Error())
			}
			return exitError{code: 1, msg: fmt.Sprintf("nurture lint: %d problem(s)", len(errs))}
		}
		return err
	}
	if a.env("PUBLIC_URL", a.getenv("UNSUBSCRIBE_URL")) == "" {
		for _, w := range untracked(c.Campaigns()) {
			fmt.Fprintln(a.stderr, "warning: "+w.String())
		}
	}
	fmt.Fprintf(a.stdout, "ok: %d stages, %d campaigns, %d templates\n",
		len(c.Campaigns().Lifecycle.Stages), len(c.Campaigns().Campaigns), len(c.Templates.Names()))
	return nil
}

func (a *app) importCmd(ctx context.Context, args []string) error {
	fs := a.flags("import")
	strict := fs.Bool("strict", false, "reject the whole file, writing nothing, if any line is bad")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 || (fs.Arg(0) != "customers" && fs.Arg(0) != "events") {
		fs.Usage()
		return exitError{code: 2}
	}
	kind, path := fs.Arg(0), fs.Arg(1)
	var r io.Reader = a.stdin
	name := "-"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		r, name = f, path
	}
	st, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	opts := importer.Options{Strict: *strict}
	var res importer.Result
	if kind == "customers" {
		res, err = importer.Customers(ctx, st, r, name, opts)
	} else {
		res, err = importer.Events(ctx, st, r, name, opts)
	}
	for _, p := range res.Problems {
		fmt.Fprintln(a.stderr, p.String())
	}
	if more := res.Bad - len(res.Problems); more > 0 {
		fmt.Fprintf(a.stderr, "%s: %d more bad line(s) not shown\n", name, more)
	}
	if err != nil {
		return err
	}
	switch {
	case res.Bad > 0 && *strict:
		return exitError{code: 1, msg: fmt.Sprintf("nurture import: %d of %d line(s) bad; --strict: nothing imported", res.Bad, res.Lines)}
	case res.Bad > 0:
		a.printImported(kind, name, res)
		return exitError{code: 1, msg: fmt.Sprintf("nurture import: %d of %d line(s) bad and skipped", res.Bad, res.Lines)}
	}
	a.printImported(kind, name, res)
	return nil
}

func (a *app) printImported(kind, name string, res importer.Result) {
	fmt.Fprintf(a.stdout, "%s: %d line(s): %d %s imported or changed, %d unchanged, %d bad\n",
		name, res.Lines, res.Imported, kind, res.Unchanged, res.Bad)
}

func (a *app) stage(ctx context.Context, args []string) error {
	fs := a.flags("stage")
	atFlag := fs.String("at", "", "evaluate at this RFC 3339 time (or now)")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	at, err := parseAt(*atFlag)
	if err != nil {
		return err
	}
	c, st, err := a.contentAndStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	w := bufio.NewWriter(a.stdout)
	defer w.Flush()
	enc := json.NewEncoder(w)
	if !*asJSON {
		fmt.Fprintf(w, "%-24s %-12s %s\n", "CUSTOMER", "STAGE", "INACTIVE_DAYS")
	}
	type row struct {
		CustomerID   string `json:"customer_id"`
		Stage        string `json:"stage"`
		InactiveDays int    `json:"inactive_days"`
	}
	return planner.New(st, a.log).Stage(ctx, c.Rules, at, func(cu *audience.Customer, f *audience.Facts) error {
		if *asJSON {
			return enc.Encode(row{cu.ID, f.Stage, f.InactiveDays})
		}
		_, err := fmt.Fprintf(w, "%-24s %-12s %d\n", cu.ID, f.Stage, f.InactiveDays)
		return err
	})
}

// tickArgs is what plan and run-once share: the instant, the campaigns
// and the store.
type tickArgs struct {
	at      time.Time
	content *content.Content
	targets []*audience.Target
	store   *store.Store
}

// tickFlags registers --at and --campaign on fs, parses args, and loads
// what a tick needs. The caller closes t.store.
func (a *app) tickFlags(ctx context.Context, fs *flag.FlagSet, args []string) (*tickArgs, error) {
	atFlag := fs.String("at", "", "act as if campaigns fired at this RFC 3339 time (or now)")
	only := fs.String("campaign", "", "only this campaign")
	if err := a.parse(fs, args); err != nil {
		return nil, err
	}
	at, err := parseAt(*atFlag)
	if err != nil {
		return nil, err
	}
	c, err := a.loadContent()
	if err != nil {
		return nil, err
	}
	targets, err := selectTargets(c.Rules, *only)
	if err != nil {
		return nil, err
	}
	st, err := a.openStore(ctx)
	if err != nil {
		return nil, err
	}
	return &tickArgs{at: at, content: c, targets: targets, store: st}, nil
}

func (a *app) plan(ctx context.Context, args []string) error {
	fs := a.flags("plan")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	ta, err := a.tickFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	defer ta.store.Close()
	at, c, st := ta.at, ta.content, ta.store
	w := bufio.NewWriter(a.stdout)
	defer w.Flush()
	enc := json.NewEncoder(w)
	if !*asJSON {
		fmt.Fprintf(w, "%-18s %-24s %-32s %-10s %s\n", "CAMPAIGN", "CUSTOMER", "EMAIL", "STAGE", "TEMPLATE")
	}
	p := planner.New(st, a.log)
	total, heldOut, capped, already := 0, 0, 0, 0
	stats, err := p.DryRun(ctx, c.Rules, ta.targets, at, func(pl *planner.Planned) error {
		switch {
		case pl.Status == "held_out":
			heldOut++
		case pl.Status == "skipped":
			capped++
		default:
			total++
		}
		if *asJSON {
			return enc.Encode(pl)
		}
		// A plain email prints as it always did; the rest say what is
		// different about them after the template.
		var note string
		if pl.Status != "planned" {
			note += " " + pl.Status
		}
		if pl.Reason != "" {
			note += " (" + pl.Reason + ")"
		}
		if pl.Variant != "" && pl.Variant != "holdout" {
			note += " variant=" + pl.Variant
		}
		if pl.EventID != "" {
			note += " event=" + pl.EventID
		}
		if !pl.SendAt.Equal(at) {
			note += " send_at=" + pl.SendAt.Format(time.RFC3339)
		}
		if note != "" {
			// Pad the template to a column, as the header does not
			// name this one.
			note = strings.Repeat(" ", max(16-len(pl.Template), 0)) + note
		}
		_, err := fmt.Fprintf(w, "%-18s %-24s %-32s %-10s %s%s\n", pl.Campaign, pl.CustomerID, pl.Email, pl.Stage, pl.Template, note)
		return err
	})
	if err != nil {
		return err
	}
	for _, s := range stats {
		already += s.AlreadyPlanned
	}
	if !*asJSON {
		fmt.Fprintf(w, "\n%d email(s) would be planned at %s (dry run: nothing written)\n", total, at.Format(time.RFC3339))
		if heldOut > 0 {
			fmt.Fprintf(w, "%d more would be held out (experiment holdout: recorded, not sent)\n", heldOut)
		}
		if capped > 0 {
			fmt.Fprintf(w, "%d more would be skipped by the global frequency cap\n", capped)
		}
		if already > 0 {
			fmt.Fprintf(w, "%d more were planned at this instant already, by an earlier tick\n", already)
		}
	}
	return nil
}

// selectTargets returns every campaign, or the one named, in name order.
func selectTargets(rules *audience.Rules, name string) ([]*audience.Target, error) {
	if name == "" {
		return rules.Targets(), nil
	}
	t := rules.Target(name)
	if t == nil {
		return nil, fmt.Errorf("--campaign %q: no such campaign", name)
	}
	return []*audience.Target{t}, nil
}

func (a *app) runOnce(ctx context.Context, args []string) error {
	fs := a.flags("run-once")
	ta, err := a.tickFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	defer ta.store.Close()
	q, closeQueue, err := a.openQueue(ctx)
	if err != nil {
		return err
	}
	defer closeQueue()
	p := planner.New(ta.store, a.log)
	if _, err := p.RunOnce(ctx, ta.content.Rules, ta.targets, ta.at, q, a.stdout); err != nil {
		return err
	}
	_, err = p.StepAll(ctx, ta.content.Rules, ta.targets, ta.at, q, a.stdout)
	return err
}

func (a *app) suppress(ctx context.Context, args []string) error {
	verb := "add"
	if len(args) > 0 && (args[0] == "add" || args[0] == "remove" || args[0] == "list") {
		verb, args = args[0], args[1:]
	}
	fs := a.flags("suppress")
	reason := fs.String("reason", "manual", "add: why these addresses must not be emailed (bounce, complaint, ...)")
	source := fs.String("source", "cli", "add: who asked, kept with the address")
	asJSON := fs.Bool("json", false, "list: one JSON object per line")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if (verb == "list") != (fs.NArg() == 0) {
		fs.Usage()
		return exitError{code: 2}
	}
	for _, e := range fs.Args() {
		if addr, err := mail.ParseAddress(e); err != nil || addr.Address != e {
			return fmt.Errorf("%q is not a bare email address", e)
		}
	}
	st, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	switch verb {
	case "list":
		list, err := st.Suppressions(ctx)
		if err != nil {
			return err
		}
		w := bufio.NewWriter(a.stdout)
		defer w.Flush()
		enc := json.NewEncoder(w)
		if !*asJSON {
			fmt.Fprintf(w, "%-32s %-12s %-12s %s\n", "EMAIL", "REASON", "SOURCE", "SINCE")
		}
		for _, sp := range list {
			if *asJSON {
				err = enc.Encode(struct {
					Email     string `json:"email"`
					Reason    string `json:"reason"`
					Source    string `json:"source"`
					CreatedAt string `json:"created_at"`
				}{sp.Email, sp.Reason, sp.Source, sp.CreatedAt.Format(time.RFC3339)})
			} else {
				_, err = fmt.Fprintf(w, "%-32s %-12s %-12s %s\n", sp.Email, sp.Reason, sp.Source, sp.CreatedAt.Format(time.RFC3339))
			}
			if err != nil {
				return err
			}
		}
		return nil
	case "remove":
		removed := 0
		for _, e := range fs.Args() {
			ok, err := st.Unsuppress(ctx, e)
			if err != nil {
				return err
			}
			if ok {
				removed++
			} else {
				fmt.Fprintf(a.stdout, "%s was not suppressed\n", e)
			}
		}
		fmt.Fprintf(a.stdout, "removed %d address(es) from the suppression list\n", removed)
		return nil
	}
	sps := make([]store.Suppression, fs.NArg())
	for i, e := range fs.Args() {
		sps[i] = store.Suppression{Email: e, Reason: *reason, Source: *source}
	}
	if err := st.SuppressAll(ctx, sps); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "suppressed %d address(es): no email will be planned or sent to them\n", fs.NArg())
	return nil
}

func (a *app) subscribe(ctx context.Context, args []string) error {
	fs := a.flags("subscribe")
	source := fs.String("source", "", "who asked for the re-subscription, kept in the consent history (required)")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError{code: 2}
	}
	if *source == "" {
		return exitError{code: 2, msg: "nurture subscribe: --source is required: say who asked for the re-subscription, e.g. --source support-ticket-123"}
	}
	id := fs.Arg(0)
	st, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	changed, err := st.Resubscribe(ctx, id, *source)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("subscribe: no customer with id %q", id)
	}
	if err != nil {
		return err
	}
	if !changed {
		fmt.Fprintf(a.stdout, "customer %q is subscribed already: nothing changed\n", id)
		return nil
	}
	fmt.Fprintf(a.stdout, "customer %q subscribed again (source %q): campaigns may email them from the next tick\n", id, *source)
	return nil
}
