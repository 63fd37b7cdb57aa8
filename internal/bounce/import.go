package bounce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"nurture/internal/store"
	"nurture/internal/unsubscribe"
)

const subjectPrefix = unsubscribe.SubjectPrefix

// UnsubscribeStore records mailto unsubscribe requests.
type UnsubscribeStore interface {
	Unsubscribe(ctx context.Context, customerID, source, campaign string) (changed bool, err error)
}

// ImporterConfig configures an Importer.
type ImporterConfig struct {
	// Tokens checks the tokens of mailto unsubscribe requests (SECRET).
	// Default nil: such requests are reported as not processed.
	Tokens *unsubscribe.Tokens
	// Now dates notices that carry no date at all. Default time.Now.
	Now func() time.Time
}

// Importer reads delivery status notifications and mailto unsubscribe
// requests from .eml and mbox files (`nurture bounces import`).
type Importer struct {
	rec   *Recorder
	unsub UnsubscribeStore
	cfg   ImporterConfig
	log   *slog.Logger
}

// NewImporter returns an Importer.
func NewImporter(rec *Recorder, unsub UnsubscribeStore, cfg ImporterConfig, log *slog.Logger) *Importer {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Importer{rec: rec, unsub: unsub, cfg: cfg, log: log}
}

// Summary counts what an import did.
type Summary struct {
	Messages int
	// Hard, Soft: new bounces recorded; Duplicates: bounces recorded
	// before; Ignored: recipients a report says were delivered.
	Hard, Soft, Duplicates, Ignored int
	// Unsubscribed: mailto requests that unsubscribed a customer;
	// AlreadyUnsubscribed: requests of customers who had opted out.
	Unsubscribed, AlreadyUnsubscribed int
	// Problems are the messages that were not processed, and why.
	Problems []Problem
}

// Problem is a message that was not processed.
type Problem struct {
	File  string
	Index int // the message's position in the file, from 1
	Line  int // the line it starts on
	Why   string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s: message %d (line %d): %s", p.File, p.Index, p.Line, p.Why)
}

// ImportFile reads the messages of one file (name is for messages) into
// sum, one at a time. A message it cannot use is a Problem, and the others
// go on; an error (reading the file, the store) stops the import, keeping
// what was recorded before it.
func (im *Importer) ImportFile(ctx context.Context, name string, r io.Reader, sum *Summary) error {
	err := eachMessage(r, maxMessageBytes, func(m rawMessage) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		sum.Messages++
		problem := func(why string) {
			p := Problem{File: name, Index: m.Index, Line: m.Line, Why: why}
			sum.Problems = append(sum.Problems, p)
			im.rec.metrics.BounceRejected(SourceDSN, "unparseable")
			im.log.Warn("message not processed", "file", name, "message", m.Index, "line", m.Line, "why", why)
		}
		if m.TooLarge {
			problem(fmt.Sprintf("over the limit of %d MiB", maxMessageBytes>>20))
			return nil
		}
		p, err := parseMessage(m.Data, im.cfg.Now().UTC())
		if err != nil {
			problem(err.Error())
			return nil
		}
		if p.token != "" {
			why, err := im.unsubscribe(ctx, p.token, sum)
			if err != nil {
				return fmt.Errorf("message %d: %w", m.Index, err)
			}
			if why != "" {
				problem(why)
			}
			return nil
		}
		sum.Ignored += p.ignored
		for _, n := range p.notices {
			res, err := im.rec.Record(ctx, SourceDSN, n)
			if err != nil {
				return fmt.Errorf("message %d: %w", m.Index, err)
			}
			switch {
			case res.Duplicate:
				sum.Duplicates++
			case n.Kind == Hard:
				sum.Hard++
			default:
				sum.Soft++
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// unsubscribe processes a mailto unsubscribe request like the one-click
// POST: source mailto, with the campaign the token names. A request that
// cannot be honoured returns why.
func (im *Importer) unsubscribe(ctx context.Context, token string, sum *Summary) (why string, err error) {
	if im.cfg.Tokens == nil {
		return "an unsubscribe request, but SECRET is not set to check its token", nil
	}
	id, campaign, err := im.cfg.Tokens.CheckToken(token)
	switch {
	case errors.Is(err, unsubscribe.ErrExpired):
		return "an unsubscribe request whose token has expired", nil
	case err != nil:
		return "an unsubscribe request whose token is not valid", nil
	}
	changed, err := im.unsub.Unsubscribe(ctx, id, "mailto", campaign)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Sprintf("an unsubscribe request for customer %q, who does not exist (any more)", id), nil
	}
	if err != nil {
		return "", err
	}
	if changed {
		sum.Unsubscribed++
		im.log.Info("customer unsubscribed", "customer_id", id, "campaign", campaign, "source", "mailto")
	} else {
		sum.AlreadyUnsubscribed++
	}
	return "", nil
}
