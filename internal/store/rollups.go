package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// RollupResult says what one RefreshRollups did.
type RollupResult struct {
	// Busy is set when another refresh was under way: this one did
	// nothing.
	Busy bool
	// Full is set on the first refresh, which rolls up every delivery.
	Full bool
	// Days is how many (campaign, day) pairs were counted again; Rows how
	// many campaign_daily rows they now have.
	Days, Rows int
}

// RefreshRollups brings campaign_daily up to date: it counts again, from
// deliveries, the days of each campaign that have a delivery (its status,
// a bounce or complaint), an attributed purchase, a first open or click
// or an opt-out through the campaign's link written since the previous
// refresh (the first refresh counts every day). It
// runs in one repeatable-read transaction, so the bound it records (its
// snapshot's oldest running transaction) leaves nothing behind, whatever
// commits meanwhile. now is recorded as the refresh time.
func (s *Store) RefreshRollups(ctx context.Context, now time.Time) (RollupResult, error) {
	var res RollupResult
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return res, fmt.Errorf("refresh rollups: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var locked bool
	if err := tx.QueryRow(ctx, s.q.get(qRollupTryLock)).Scan(&locked); err != nil {
		return res, fmt.Errorf("refresh rollups: %w", err)
	}
	if !locked {
		res.Busy = true
		return res, nil
	}
	var prev pgtype.Text // xid8 travels as text
	var next string
	if err := tx.QueryRow(ctx, s.q.get(qRollupProgress)).Scan(&prev, &next); err != nil {
		return res, fmt.Errorf("refresh rollups: %w", err)
	}
	res.Full = !prev.Valid
	// The first refresh reads every delivery once; later ones read the
	// days rollup_log names and the rows of the other tables touched
	// since, through their indexes.
	dirty, dirtyArgs, count := s.q.get(qRollupDirty), []any{prev.String}, s.q.get(qRollupCount)
	if res.Full {
		dirty, dirtyArgs, count = s.q.get(qRollupDirtyAll), nil, s.q.get(qRollupCountAll)
	}
	steps := []struct {
		what, query string
		args        []any
		n           *int
	}{
		{"dirty days table", s.q.get(qRollupDirtyTable), nil, nil},
		{"find changed days", dirty, dirtyArgs, &res.Days},
		{"analyze changed days", s.q.get(qRollupDirtyAnalyze), nil, nil},
		{"clear changed days", s.q.get(qRollupClear), []any{res.Full}, nil},
		{"count changed days", count, nil, &res.Rows},
		{"record progress", s.q.get(qRollupDone), []any{next, now.UTC()}, nil},
	}
	for _, st := range steps {
		tag, err := tx.Exec(ctx, st.query, st.args...)
		if err != nil {
			return RollupResult{}, fmt.Errorf("refresh rollups: %s: %w", st.what, err)
		}
		if st.n != nil {
			*st.n = int(tag.RowsAffected())
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return RollupResult{}, fmt.Errorf("refresh rollups: %w", err)
	}
	return res, nil
}

// RollupsRefreshedAt is when RefreshRollups last ran; ok is false when it
// never has.
func (s *Store) RollupsRefreshedAt(ctx context.Context) (at time.Time, ok bool, err error) {
	var t pgtype.Timestamptz
	if err := s.pool.QueryRow(ctx, s.q.get(qRollupRefreshedAt)).Scan(&t); err != nil {
		return time.Time{}, false, fmt.Errorf("rollup refresh time: %w", err)
	}
	return t.Time.UTC(), t.Valid, nil
}

// CampaignTotals are the report rows of every campaign (campaign "") or
// of one, read from campaign_daily: the deliveries of every day, as of
// the last RefreshRollups.
func (s *Store) CampaignTotals(ctx context.Context, campaign string) ([]ReportRow, error) {
	rows, err := s.pool.Query(ctx, s.q.get(qCampaignTotals), campaign)
	if err != nil {
		return nil, fmt.Errorf("campaign totals: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ReportRow, error) {
		var x ReportRow
		var n, unsub, bounced, complained, conv, opened, clicked, entries int64
		err := r.Scan(&x.Campaign, &x.Variant, &x.Step, &x.Status, &x.Reason, &n, &unsub, &bounced, &complained, &conv, &x.Revenue,
			&opened, &clicked, &entries)
		x.EntriesConverted = int(entries)
		x.Deliveries, x.Unsubscribed, x.Converted = int(n), int(unsub), int(conv)
		x.Bounced, x.Complained, x.Opened, x.Clicked = int(bounced), int(complained), int(opened), int(clicked)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("campaign totals: %w", err)
	}
	return out, nil
}

// CampaignDay counts one campaign's deliveries due on one UTC day.
type CampaignDay struct {
	Day time.Time // midnight UTC
	// Planned counts every delivery, Sent the sent ones, Opened and
	// Clicked those with a human open (or click) and click; Converted the
	// sent ones with an attributed purchase, whose amounts add up to
	// Revenue.
	Planned, Sent, Opened, Clicked, Converted int
	Revenue                                   float64
}

// CampaignDays are a campaign's deliveries per day (by send_at, UTC), from
// campaign_daily, oldest first; days without deliveries are absent.
func (s *Store) CampaignDays(ctx context.Context, campaign string) ([]CampaignDay, error) {
	rows, err := s.pool.Query(ctx, s.q.get(qCampaignDays), campaign)
	if err != nil {
		return nil, fmt.Errorf("days of campaign %q: %w", campaign, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CampaignDay, error) {
		var d CampaignDay
		var planned, sent, opened, clicked, conv int64
		err := r.Scan(&d.Day, &planned, &sent, &opened, &clicked, &conv, &d.Revenue)
		d.Day = time.Date(d.Day.Year(), d.Day.Month(), d.Day.Day(), 0, 0, 0, 0, time.UTC)
		d.Planned, d.Sent, d.Opened, d.Clicked, d.Converted = int(planned), int(sent), int(opened), int(clicked), int(conv)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("days of campaign %q: %w", campaign, err)
	}
	return out, nil
}

// StageCount is how many customers a sweep found in a stage, and the sum
// of their total_spent.
type StageCount struct {
	SweptAt    time.Time
	Stage      string
	Customers  int
	TotalSpent float64
}

// StageDays are the stage counts of the last sweep of each UTC day in
// [from, to), oldest first, then by stage.
func (s *Store) StageDays(ctx context.Context, from, to time.Time) ([]StageCount, error) {
	out, err := s.stageCounts(ctx, s.q.get(qStageDays), from, to)
	if err != nil {
		return nil, fmt.Errorf("stage counts per day: %w", err)
	}
	return out, nil
}

// StageLatest are the stage counts of the latest sweep, by stage; none
// before the first sweep.
func (s *Store) StageLatest(ctx context.Context) ([]StageCount, error) {
	out, err := s.stageCounts(ctx, s.q.get(qStageLatest))
	if err != nil {
		return nil, fmt.Errorf("latest stage counts: %w", err)
	}
	return out, nil
}

func (s *Store) stageCounts(ctx context.Context, query string, args ...any) ([]StageCount, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (StageCount, error) {
		var c StageCount
		var n int64
		err := r.Scan(&c.SweptAt, &c.Stage, &n, &c.TotalSpent)
		c.SweptAt, c.Customers = c.SweptAt.UTC(), int(n)
		return c, err
	})
}

// StageFlow counts the customers sweeps saw moving from one stage to
// another; From is "" for first recorded stages.
type StageFlow struct {
	From, To  string
	Customers int
}

// StageFlows are the changes recorded by the sweeps in [from, to), by
// from and to stage.
func (s *Store) StageFlows(ctx context.Context, from, to time.Time) ([]StageFlow, error) {
	rows, err := s.pool.Query(ctx, s.q.get(qStageFlows), from, to)
	if err != nil {
		return nil, fmt.Errorf("stage flows: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StageFlow, error) {
		var f StageFlow
		var n int64
		err := r.Scan(&f.From, &f.To, &n)
		f.Customers = int(n)
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("stage flows: %w", err)
	}
	return out, nil
}
