package planner_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"nurture/internal/audience"
	"nurture/internal/campaign"
	"nurture/internal/importer"
	"nurture/internal/planner"
	"nurture/internal/queue"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

// t0 is when the trigger tests' carts are abandoned.
var t0 = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

// triggerRules loads testdata/triggers with cart made an event trigger
// (cart_abandoned, delay 1h, within 24h) and loyal-hello a stage trigger
// (entered_stage loyal, no delay, within 24h); edit may change them
// further before they are compiled.
func triggerRules(t *testing.T, edit func(set *campaign.Set)) *audience.Rules {
	t.Helper()
	set, err := campaign.Load("testdata/triggers")
	if err != nil {
		t.Fatal(err)
	}
	trigger := func(name string, tr campaign.Trigger) {
		c := set.Campaign(name)
		c.Schedule, c.Cron, c.Trigger = "", nil, &tr
	}
	trigger("cart", campaign.Trigger{Event: "cart_abandoned", Delay: time.Hour, Within: 24 * time.Hour})
	trigger("loyal-hello", campaign.Trigger{EnteredStage: "loyal"})
	if edit != nil {
		edit(set)
	}
	rules, err := audience.Compile(set)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// importLines imports JSON Lines of customers or events through the
// importer, its clock at now.
func importLines(t *testing.T, st *store.Store, kind string, now time.Time, lines ...string) {
	t.Helper()
	imp := importer.Customers
	if kind == "events" {
		imp = importer.Events
	}
	res, err := imp(context.Background(), st, strings.NewReader(strings.Join(lines, "\n")+"\n"), kind,
		importer.Options{Strict: true, Now: func() time.Time { return now }})
	if err != nil || res.Bad > 0 {
		t.Fatalf("import %s: %v %v", kind, err, res.Problems)
	}
}

func customerLine(id string, created time.Time) string {
	return fmt.Sprintf(`{"id":%q,"email":"%s@example.com","created_at":%q}`, id, id, created.Format(time.RFC3339))
}

func eventLine(id, customer, typ string, at time.Time) string {
	if id == "" {
		return fmt.Sprintf(`{"customer_id":%q,"type":%q,"occurred_at":%q}`, customer, typ, at.Format(time.RFC3339))
	}
	return fmt.Sprintf(`{"id":%q,"customer_id":%q,"type":%q,"occurred_at":%q}`, id, customer, typ, at.Format(time.RFC3339))
}

func triggerQueue(t *testing.T) *queue.Client {
	t.Helper()
	rdb := redis.NewClient(testenv.Redis(t))
	t.Cleanup(func() { rdb.Close() })
	return queue.NewClient(rdb, queue.Config{})
}

// row is a delivery as the trigger tests compare them.
type row struct {
	Campaign, Customer string
	Occurrence         time.Time
	Step               int
	EventID            string
	SendAt             time.Time
	Status             string
}

func (r row) String() string {
	return fmt.Sprintf("%s %s occurrence=%s step=%d event=%q send_at=%s %s", r.Campaign, r.Customer,
		r.Occurrence.Format(time.RFC3339), r.Step, r.EventID, r.SendAt.Format(time.RFC3339), r.Status)
}

// rows returns the stored deliveries of the campaigns named (all when
// none), statuses planned and queued both shown as "planned".
func rows(t *testing.T, st *store.Store, campaigns ...string) []row {
	t.Helper()
	var out []row
	err := st.Deliveries(context.Background(), func(d *store.DeliveryRow) error {
		if len(campaigns) > 0 && !slices.Contains(campaigns, d.Campaign) {
			return nil
		}
		status := d.Status
		if status == store.StatusQueued {
			status = store.StatusPlanned
		}
		out = append(out, row{d.Campaign, d.CustomerID, d.Occurrence.UTC(), d.Step, d.EventID, d.SendAt.UTC(), status})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sortRows(out)
	return out
}

func sortRows(rs []row) {
	slices.SortFunc(rs, func(a, b row) int { return strings.Compare(a.String(), b.String()) })
}

// eventID returns the stored id of the customer's event of a type.
func eventIDs(t *testing.T, st *store.Store, rules *audience.Rules, p *planner.Planner, at time.Time) map[string]string {
	t.Helper()
	ids := map[string]string{}
	_, err := p.EvaluateTriggered(context.Background(), rules, rules.Target("cart"), at, nil, func(pl *planner.Planned) error {
		ids[pl.CustomerID] = pl.EventID
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestEventTrigger(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := testenv.DatabaseURL(t)
	st := openStore(t, u)
	q := triggerQueue(t)
	rules := triggerRules(t, nil)
	p := planner.New(st, slog.New(slog.DiscardHandler))
	cart := rules.Target("cart")

	importLines(t, st, "customers", t0, customerLine("c1", t0.Add(-100*day)), customerLine("c2", t0.Add(-100*day)))
	events := []string{
		eventLine("e1", "c1", "cart_abandoned", t0),
		eventLine("", "c2", "cart_abandoned", t0.Add(time.Minute)), // no id: a derived one
		eventLine("e3", "c3", "cart_abandoned", t0),                // c3 arrives later
		eventLine("e4", "c1", "purchase", t0),                      // another type
		eventLine("old", "c1", "cart_abandoned", t0.Add(-3*day)),   // history: due long ago
	}
	importLines(t, st, "events", t0, events...)

	tick := func(now time.Time) planner.TickResult {
		t.Helper()
		res, err := p.TickTriggered(ctx, rules, cart, now, q, planner.TickOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	// Not due yet: one second before t0 + delay.
	if res := tick(t0.Add(time.Hour - time.Second)); res.Candidates != 0 || res.Planned != 0 {
		t.Errorf("before the delay: %+v, want nothing due", res)
	}
	if got := rows(t, st); len(got) != 0 {
		t.Errorf("before the delay: rows %v", got)
	}

	// Due: e1 at t0 + 1h exactly; c2's event is a minute later.
	now := t0.Add(time.Hour)
	if res := tick(now); res.Candidates != 1 || res.Planned != 1 || res.Enqueued != 1 {
		t.Errorf("at the due time: %+v, want 1 due, planned and enqueued", res)
	}
	want := []row{{"cart", "c1", t0.Add(time.Hour), 1, "e1", now, store.StatusPlanned}}
	if got := rows(t, st); !reflect.DeepEqual(got, want) {
		t.Errorf("at the due time: rows\n%v\nwant\n%v", got, want)
	}

	// c2's event is due a minute later; its id is the derived one.
	now = t0.Add(time.Hour + time.Minute)
	derived := eventIDs(t, st, rules, p, now)["c2"]
	if derived == "" {
		t.Fatal("c2's event has no id")
	}
	tick(now)
	want = append(want, row{"cart", "c2", t0.Add(time.Hour + time.Minute), 1, derived, now, store.StatusPlanned})
	sortRows(want)
	if got := rows(t, st); !reflect.DeepEqual(got, want) {
		t.Errorf("second event: rows\n%v\nwant\n%v", got, want)
	}

	// Importing the same events again, and evaluating again, by two
	// processes at once, plans nothing new.
	importLines(t, st, "events", t0, events...)
	st2 := openStore(t, u)
	p2 := planner.New(st2, slog.New(slog.DiscardHandler))
	var wg sync.WaitGroup
	for _, pp := range []*planner.Planner{p, p2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := pp.RunOnce(ctx, rules, rules.Targets(), now, q, io.Discard); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := rows(t, st, "cart"); !reflect.DeepEqual(got, want) {
		t.Errorf("after a re-import and two concurrent runs: rows\n%v\nwant\n%v", got, want)
	}

	// c3 arrives while its event is still within: planned then, with the
	// event's due time as occurrence.
	now = t0.Add(23 * time.Hour)
	importLines(t, st, "customers", now, customerLine("c3", now))
	tick(now)
	want = append(want, row{"cart", "c3", t0.Add(time.Hour), 1, "e3", now, store.StatusPlanned})
	sortRows(want)
	if got := rows(t, st, "cart"); !reflect.DeepEqual(got, want) {
		t.Errorf("late customer: rows\n%v\nwant\n%v", got, want)
	}

	// A new event whose due time is now - within exactly is never planned.
	importLines(t, st, "events", now, eventLine("e5", "c1", "cart_abandoned", now.Add(-25*time.Hour)))
	if res := tick(now); res.Candidates != 0 || res.Planned != 0 {
		t.Errorf("event due within ago: %+v, want nothing due", res)
	}
	if got := rows(t, st, "cart"); !reflect.DeepEqual(got, want) {
		t.Errorf("event due within ago: rows\n%v\nwant\n%v", got, want)
	}
}

// TestEventTriggerRules checks that the audience rules apply to entries at
// the evaluation instant, and that a customer's two entries in one
// evaluation count toward each other's max_sends.
func TestEventTriggerRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	q := triggerQueue(t)
	rules := triggerRules(t, func(set *campaign.Set) {
		set.Campaign("cart").Frequency.MaxSends = 1
	})
	p := planner.New(st, slog.New(slog.DiscardHandler))
	importLines(t, st, "customers", t0,
		customerLine("a", t0.Add(-100*day)), customerLine("unsub", t0.Add(-100*day)), customerLine("supp", t0.Add(-100*day)))
	importLines(t, st, "events", t0,
		eventLine("a1", "a", "cart_abandoned", t0), eventLine("a2", "a", "cart_abandoned", t0.Add(time.Minute)),
		eventLine("u1", "unsub", "cart_abandoned", t0), eventLine("s1", "supp", "cart_abandoned", t0))
	if _, err := st.Unsubscribe(ctx, "unsub", "unsubscribe link", ""); err != nil {
		t.Fatal(err)
	}
	if err := st.AddSuppression(ctx, "supp@example.com", "bounce"); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(2 * time.Hour)
	res, err := p.TickTriggered(ctx, rules, rules.Target("cart"), now, q, planner.TickOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Candidates != 4 || res.Matched != 1 || res.Planned != 1 {
		t.Errorf("result %+v, want 4 due, 1 matched and planned", res)
	}
	want := []row{{"cart", "a", t0.Add(time.Hour), 1, "a1", now, store.StatusPlanned}}
	if got := rows(t, st); !reflect.DeepEqual(got, want) {
		t.Errorf("rows\n%v\nwant\n%v", got, want)
	}
	// a2 stays due, and max_sends keeps it out at every evaluation: from
	// now on before it is read, as a's history alone decides it.
	res, err = p.TickTriggered(ctx, rules, rules.Target("cart"), now.Add(time.Hour), q, planner.TickOptions{})
	if err != nil || res.Candidates != 2 || res.Planned != 0 {
		t.Errorf("next evaluation: %+v, %v; want 2 due (unsub's and supp's), none planned", res, err)
	}
}

// TestEventTriggerCooldownLeftOut: an event kept out by the cooldown of
// an earlier entry is not read again while that cooldown runs, is planned
// by the first evaluation after it ends (still within), and explain still
// names the cooldown meanwhile.
func TestEventTriggerCooldownLeftOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	q := triggerQueue(t)
	rules := triggerRules(t, func(set *campaign.Set) {
		set.Campaign("cart").Frequency.Cooldown = 6 * time.Hour
	})
	p := planner.New(st, slog.New(slog.DiscardHandler))
	cart := rules.Target("cart")
	importLines(t, st, "customers", t0, customerLine("a", t0.Add(-100*day)))
	importLines(t, st, "events", t0,
		eventLine("a1", "a", "cart_abandoned", t0), eventLine("a2", "a", "cart_abandoned", t0.Add(time.Hour)))
	tick := func(now time.Time, candidates, planned int) {
		t.Helper()
		res, err := p.TickTriggered(ctx, rules, cart, now, q, planner.TickOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Candidates != candidates || res.Planned != planned {
			t.Errorf("at %s: %d due, %d planned; want %d and %d", now.Format(time.RFC3339Nano), res.Candidates, res.Planned, candidates, planned)
		}
	}

	// Both due: a1 is planned, and its entry (due t0+1h) keeps a2 out.
	tick(t0.Add(2*time.Hour), 2, 1)
	want := []row{{"cart", "a", t0.Add(time.Hour), 1, "a1", t0.Add(2 * time.Hour), store.StatusPlanned}}
	if got := rows(t, st); !reflect.DeepEqual(got, want) {
		t.Errorf("first evaluation: rows\n%v\nwant\n%v", got, want)
	}
	// While the cooldown runs, a2 is left out before it is read, up to its
	// last microsecond: t0+1h+6h is the first instant it is over.
	tick(t0.Add(3*time.Hour), 0, 0)
	tick(t0.Add(7*time.Hour-time.Microsecond), 0, 0)
	ex, err := p.Explain(ctx, rules, "a", t0.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range ex.Campaigns {
		if v.Campaign == "cart" && (v.Planned || v.Rule != "cooldown") {
			t.Errorf("explain during the cooldown: %+v, want the rule cooldown", v)
		}
	}
	// Then it is planned, its occurrence its own due time.
	now := t0.Add(7 * time.Hour)
	tick(now, 1, 1)
	want = append(want, row{"cart", "a", t0.Add(2 * time.Hour), 1, "a2", now, store.StatusPlanned})
	sortRows(want)
	if got := rows(t, st); !reflect.DeepEqual(got, want) {
		t.Errorf("after the cooldown: rows\n%v\nwant\n%v", got, want)
	}
}

func openStore(t *testing.T, url string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), url, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// TestEventTriggerWhereAndExit: trigger.where reads the event, exit_when
// the facts at the evaluation and the event; both keep entries out.
func TestEventTriggerWhereAndExit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	rules := triggerRules(t, func(set *campaign.Set) {
		c := set.Campaign("cart")
		c.Trigger.Where = `event.properties.total >= 20 && event.type == "cart_abandoned"`
		c.ExitWhen = `last_purchase_at != nil && last_purchase_at > event.occurred_at`
	})
	p := planner.New(st, slog.New(slog.DiscardHandler))
	importLines(t, st, "customers", t0,
		customerLine("big", t0.Add(-100*day)), customerLine("small", t0.Add(-100*day)), customerLine("bought", t0.Add(-100*day)))
	cart := func(id, customer string, total int) string {
		return fmt.Sprintf(`{"id":%q,"customer_id":%q,"type":"cart_abandoned","occurred_at":%q,"properties":{"total":%d}}`,
			id, customer, t0.Format(time.RFC3339), total)
	}
	importLines(t, st, "events", t0, cart("c-big", "big", 30), cart("c-small", "small", 10), cart("c-bought", "bought", 50),
		fmt.Sprintf(`{"id":"p","customer_id":"bought","type":"purchase","occurred_at":%q,"amount":50}`, t0.Add(30*time.Minute).Format(time.RFC3339)))
	var got []string
	stats, err := p.EvaluateTriggered(ctx, rules, rules.Target("cart"), t0.Add(time.Hour), nil, func(pl *planner.Planned) error {
		got = append(got, pl.CustomerID+" "+pl.EventID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"big c-big"}; !reflect.DeepEqual(got, want) || stats.Candidates != 3 || stats.Matched != 1 {
		t.Errorf("planned %v (%+v), want %v of 3 due", got, stats, want)
	}
}
