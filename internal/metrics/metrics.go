// Package metrics holds nurture's Prometheus metrics. Each process makes one
// Metrics with its own registry; there is no global state.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the set of metrics one process exports. A nil *Metrics is
// valid and records nothing, which keeps commands without /metrics simple.
type Metrics struct {
	reg            *prometheus.Registry
	deliveries     *prometheus.CounterVec
	planned        *prometheus.CounterVec
	sendTime       prometheus.Histogram
	tickTime       *prometheus.HistogramVec
	sendErrors     *prometheus.CounterVec
	kept           *prometheus.CounterVec
	keptNow        prometheus.Gauge
	infra          *prometheus.CounterVec
	entries        *prometheus.CounterVec
	lag            prometheus.Histogram
	sweepTime      prometheus.Histogram
	stages         *prometheus.CounterVec
	reloads        *prometheus.CounterVec
	loadedAt       prometheus.Gauge
	loadedOK       prometheus.Gauge
	deferred       *prometheus.CounterVec
	bounces        *prometheus.CounterVec
	bounceRejected *prometheus.CounterVec
	ingested       *prometheus.CounterVec
	converted      *prometheus.CounterVec
	revenue        *prometheus.CounterVec
	waits          *prometheus.CounterVec
	waitTime       prometheus.Histogram
	backoffs       *prometheus.CounterVec
	hits           *prometheus.CounterVec
	rejected       *prometheus.CounterVec
	unrecorded     *prometheus.CounterVec
}

// New returns Metrics registered on a fresh registry, with Go and process
// collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nurture_deliveries_total",
			Help: "Deliveries finished by this process, by campaign and outcome (sent, failed, skipped, retry).",
		}, []string{"campaign", "status"}),
		planned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nurture_planned_total",
			Help: "Delivery rows created by scheduler ticks, by campaign.",
		}, []string{"campaign"}),
		sendTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "nurture_send_duration_seconds",
			Help:    "Time to hand one email to the mail transport.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		tickTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "nurture_tick_duration_seconds",
			Help:    "Time to plan and enqueue one campaign tick.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}, []string{"campaign"}),
	}
	m.sendErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nurture_send_errors_total",
		Help: "Failed send attempts by kind: connection_refused, timeout, connection_dropped, tls, auth, temporary_reply, permanent_reply, invalid_message, other.",
	}, []string{"kind"})
	m.kept = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nurture_outcomes_kept_total",
		Help: "Send outcomes kept in Redis because PostgreSQL could not record them (event=kept), and later recorded (event=recorded).",
	}, []string{"event"})
	m.keptNow = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "nurture_outcomes_waiting",
		Help: "Send outcomes kept in Redis and not yet recorded in PostgreSQL, as last seen by this process.",
	})
	m.infra = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nurture_infrastructure_errors_total",
		Help: "Failed calls to PostgreSQL or Redis by system and operation, and Redis data losses detected (system=redis, op=data_lost).",
	}, []string{"system", "op"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nurture_reloads_total",
		Help: "Reloads of campaigns and templates by result: ok (taken), invalid (refused, the previous set keeps running), failed (valid, but a role could not take it).",
	}, []string{"result"})
	m.loadedAt = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "nurture_reload_last_success_timestamp_seconds",
		Help: "When the campaigns and templates running now were loaded (at start-up or by the last good reload), in Unix seconds.",
	})
	m.loadedOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "nurture_reload_last_successful",
		Help: "1 when the last load of campaigns and templates was taken, 0 when it was refused or failed: the files on disk are not what runs.",
	})
	m.entries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nurture_trigger_entries_total",
		Help: "Entries of triggered campaigns (events and stage entries) made by the scheduler, by campaign: a delivery row for a single email, a journey entered for a journey.",
	}, []string{"campaign"})
	m.lag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "nurture_trigger_lag_seconds",
		Help:    "Time from a trigger's due time (occurred_at + delay, or the observed stage entry + delay) to its task being enqueued.",
		Buckets: prometheus.ExponentialBuckets(0.5, 2, 14),
	})
	m.sweepTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "nurture_stage_sweep_duration_seconds",
		Help:    "Time to record every customer's stage (one stage sweep).",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
	})
	m.stages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nurture_stage_changes_total",
		Help: "Stage changes recorded by stage sweeps: baseline (a first recorded stage) or entry (what stage triggers plan).",
	}, []string{"kind"})
	m.deferred = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nurture_deferred_total",
		Help: "Deliveries a worker picked up before their send time or outside their send window and put back until it opens, by campaign.",
	}, []string{"campaign"})
	m.bounces = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nurture_bounces_total",
		Help: "Bounces and complaints recorded, by kind (hard, soft, complaint) and source (webhook, ses, dsn); a notice delivered again is not counted twice.",
	}, []string{"kind", "source"})
	m.bounceRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nurture_bounce_notifications_rejected_total",
		Help: "Bounce and complaint notifications refused or not understood, by source (webhook, ses, dsn) and reason (unauthorized, invalid, signature, unparseable, failed).",
	}, []string{"source", "reason"})
	m.reg.MustRegister(m.bounces, m.bounceRejected)
	m.ingested = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nurture_api_items_total",
		Help: "Items posted to the ingest API, by kind (customers, events) and result: accepted (written), duplicate (changed nothing), invalid (refused).",
	}, []string{"kind", "result"})
	m.waits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nurture_throttle_waits_total",
		Help: "Emails held back by the send-rate throttles (rate_limits) or a domain backoff: waited (the worker waited, then sent) or deferred (the wait was too long; put back in the queue).",
	}, []string{"outcome"})
	m.waitTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "nurture_throttle_wait_seconds",
		Help:    "Time one email waited for its send slot, for emails that waited.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
	})
	m.backoffs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nurture_domain_backoffs_total",
		Help: "SMTP 421 or 452 replies that slowed a recipient domain down: started (a new backoff episode), extended (a longer backoff in an episode), recovered (an episode ended by an accepted email).",
	}, []string{"event"})
	m.converted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nurture_conversions_total",
		Help: "Purchases attributed to a campaign's emails (last touch within its conversion window), by campaign, counted by the scheduler leader that attributed them.",
	}, []string{"campaign"})
	m.revenue = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nurture_revenue_total",
		Help: "Amounts of the purchases attributed to a campaign's emails, by campaign.",
	}, []string{"campaign"})
	m.reg.MustRegister(m.converted, m.revenue)
	m.hits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nurture_tracking_hits_total",
		Help: "Opens and clicks recorded, by kind (open, click), campaign and source: human, or machine (a link scanner, or within 2 seconds of the send), which reports leave out.",
	}, []string{"kind", "campaign", "source"})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nurture_tracking_rejected_total",
		Help: "Tracking requests not counted, by kind (open, click) and reason: invalid (forged or altered token, answered 400) or expired (answered, not counted).",
	}, []string{"kind", "reason"})
	m.unrecorded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nurture_tracking_unrecorded_total",
		Help: "Tracking hits answered but not recorded, by reason: backlog (the recorder was full, PostgreSQL being slow or down), database (the write failed), unknown_delivery (the delivery no longer exists).",
	}, []string{"reason"})
	m.reg.MustRegister(m.deliveries, m.planned, m.sendTime, m.tickTime, m.sendErrors, m.kept, m.keptNow, m.infra,
		m.entries, m.lag, m.sweepTime, m.stages, m.reloads, m.loadedAt, m.loadedOK, m.deferred, m.ingested, m.waits, m.waitTime, m.backoffs,
		m.hits, m.rejected, m.unrecorded,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Delivered counts one finished delivery.
func (m *Metrics) Delivered(campaign, status string) {
	if m != nil {
		m.deliveries.WithLabelValues(campaign, status).Inc()
	}
}

// Bounce counts one bounce or complaint recorded.
func (m *Metrics) Bounce(kind, source string) {
	if m != nil {
		m.bounces.WithLabelValues(kind, source).Inc()
	}
}

// BounceRejected counts one notification refused or not understood.
func (m *Metrics) BounceRejected(source, reason string) {
	if m != nil {
		m.bounceRejected.WithLabelValues(source, reason).Inc()
	}
}

// Converted counts n purchases attributed to campaign, worth revenue.
func (m *Metrics) Converted(campaign string, n int, revenue float64) {
	if m != nil && n > 0 {
		m.converted.WithLabelValues(campaign).Add(float64(n))
		m.revenue.WithLabelValues(campaign).Add(revenue)
	}
}

// Ingested counts n items of the ingest API of one kind with one result.
func (m *Metrics) Ingested(kind, result string, n int) {
	if m != nil && n > 0 {
		m.ingested.WithLabelValues(kind, result).Add(float64(n))
	}
}

// TrackingHits counts n recorded hits of kind (open, click) on
// campaign's emails, human or machine-made.
func (m *Metrics) TrackingHits(kind, campaign string, machine bool, n int) {
	if m != nil && n > 0 {
		source := "human"
		if machine {
			source = "machine"
		}
		m.hits.WithLabelValues(kind, campaign, source).Add(float64(n))
	}
}

// TrackingRejected counts one tracking request of kind not counted for
// reason (invalid, expired).
func (m *Metrics) TrackingRejected(kind, reason string) {
	if m != nil {
		m.rejected.WithLabelValues(kind, reason).Inc()
	}
}

// TrackingUnrecorded counts n hits answered but not recorded, for reason
// (backlog, database, unknown_delivery).
func (m *Metrics) TrackingUnrecorded(reason string, n int) {
	if m != nil && n > 0 {
		m.unrecorded.WithLabelValues(reason).Add(float64(n))
	}
}

// Deferred counts one delivery put back until its send window opens.
func (m *Metrics) Deferred(campaign string) {
	if m != nil {
		m.deferred.WithLabelValues(campaign).Inc()
	}
}

// ThrottleWaited counts one email that waited d for its send slot.
func (m *Metrics) ThrottleWaited(d time.Duration) {
	if m != nil {
		m.waits.WithLabelValues("waited").Inc()
		m.waitTime.Observe(d.Seconds())
	}
}

// ThrottleDeferred counts one email put back because its send slot was
// too far away.
func (m *Metrics) ThrottleDeferred() {
	if m != nil {
		m.waits.WithLabelValues("deferred").Inc()
	}
}

// Values of DomainBackoff's event.
const (
	BackoffStarted   = "started"
	BackoffExtended  = "extended"
	BackoffRecovered = "recovered"
)

// DomainBackoff counts one event of a domain backoff.
func (m *Metrics) DomainBackoff(event string) {
	if m != nil {
		m.backoffs.WithLabelValues(event).Inc()
	}
}

// SendLatency observes the time one send took.
func (m *Metrics) SendLatency(d time.Duration) {
	if m != nil {
		m.sendTime.Observe(d.Seconds())
	}
}

// Ticked records one campaign tick.
func (m *Metrics) Ticked(campaign string, planned int, d time.Duration) {
	if m != nil {
		m.planned.WithLabelValues(campaign).Add(float64(planned))
		m.tickTime.WithLabelValues(campaign).Observe(d.Seconds())
	}
}

// TriggerEntries counts delivery rows created for triggered campaigns.
func (m *Metrics) TriggerEntries(campaign string, n int) {
	if m != nil && n > 0 {
		m.entries.WithLabelValues(campaign).Add(float64(n))
	}
}

// TriggerLag observes the time from one trigger's due time to its enqueue.
func (m *Metrics) TriggerLag(d time.Duration) {
	if m != nil {
		m.lag.Observe(d.Seconds())
	}
}

// Swept records one stage sweep.
func (m *Metrics) Swept(baselines, entries int, d time.Duration) {
	if m != nil {
		m.stages.WithLabelValues("baseline").Add(float64(baselines))
		m.stages.WithLabelValues("entry").Add(float64(entries))
		m.sweepTime.Observe(d.Seconds())
	}
}

// SendFailed counts one failed send attempt of a kind.
func (m *Metrics) SendFailed(kind string) {
	if m != nil {
		m.sendErrors.WithLabelValues(kind).Inc()
	}
}

// OutcomesKept counts outcomes kept in Redis during a database outage.
func (m *Metrics) OutcomesKept(n int) {
	if m != nil {
		m.kept.WithLabelValues("kept").Add(float64(n))
	}
}

// OutcomesRecorded counts kept outcomes that reached PostgreSQL.
func (m *Metrics) OutcomesRecorded(n int) {
	if m != nil {
		m.kept.WithLabelValues("recorded").Add(float64(n))
	}
}

// OutcomesWaiting sets the number of kept outcomes not yet recorded.
func (m *Metrics) OutcomesWaiting(n int) {
	if m != nil {
		m.keptNow.Set(float64(n))
	}
}

// InfraError counts one failed call to system ("postgres" or "redis").
func (m *Metrics) InfraError(system, op string) {
	if m != nil {
		m.infra.WithLabelValues(system, op).Inc()
	}
}

// Result values of Reloaded.
const (
	ReloadOK      = "ok"
	ReloadInvalid = "invalid"
	ReloadFailed  = "failed"
)

// Loaded records the campaigns and templates loaded at start-up, at time at.
func (m *Metrics) Loaded(at time.Time) {
	if m != nil {
		m.loadedAt.Set(float64(at.UnixNano()) / 1e9)
		m.loadedOK.Set(1)
	}
}

// Reloaded counts one reload with its result (ReloadOK, ReloadInvalid or
// ReloadFailed); an ok reload at time at also sets the last load time.
func (m *Metrics) Reloaded(result string, at time.Time) {
	if m == nil {
		return
	}
	m.reloads.WithLabelValues(result).Inc()
	if result == ReloadOK {
		m.Loaded(at)
		return
	}
	m.loadedOK.Set(0)
}

// QueueSize is the size of one queue in one state.
type QueueSize struct {
	Queue, State string
	N            int
}

// WatchQueues exports nurture_queue_tasks{queue,state}, read by sizes at
// each scrape.
func (m *Metrics) WatchQueues(sizes func(ctx context.Context) ([]QueueSize, error)) {
	if m != nil {
		m.reg.MustRegister(&queueCollector{sizes: sizes})
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

var queueDesc = prometheus.NewDesc("nurture_queue_tasks",
	"Tasks in each Asynq queue and state, read from Redis at scrape time.",
	[]string{"queue", "state"}, nil)

type queueCollector struct {
	sizes func(ctx context.Context) ([]QueueSize, error)
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- queueDesc }

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sizes, err := c.sizes(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueDesc, err)
		return
	}
	for _, s := range sizes {
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(s.N), s.Queue, s.State)
	}
}

// CampaignResults are one campaign's delivery totals as PostgreSQL keeps
// them (the results rollups): deliveries by status, and the sent ones
// opened, clicked and converted, with the revenue attributed to them.
type CampaignResults struct {
	Campaign                   string
	Deliveries                 map[string]int // by status
	Opened, Clicked, Converted int
	Revenue                    float64
}

// WatchResults exports the delivery totals of every campaign, read with
// results at scrape time. Unlike the counters of this process, they
// survive restarts and count every process's work.
func (m *Metrics) WatchResults(results func(ctx context.Context) ([]CampaignResults, error)) {
	if m != nil {
		m.reg.MustRegister(&resultsCollector{results: results})
	}
}

var (
	resultsDeliveriesDesc = prometheus.NewDesc("nurture_results_deliveries",
		"Deliveries of each campaign by status, from PostgreSQL's results rollups (as of the scheduler leader's last refresh, at every trigger poll).",
		[]string{"campaign", "status"}, nil)
	resultsOpenedDesc = prometheus.NewDesc("nurture_results_opened",
		"Deliveries of each campaign opened by a person (machine-made opens left out), from the results rollups.", []string{"campaign"}, nil)
	resultsClickedDesc = prometheus.NewDesc("nurture_results_clicked",
		"Deliveries of each campaign clicked by a person, from the results rollups.", []string{"campaign"}, nil)
	resultsConvertedDesc = prometheus.NewDesc("nurture_results_converted",
		"Sent deliveries of each campaign with an attributed purchase, from the results rollups.", []string{"campaign"}, nil)
	resultsRevenueDesc = prometheus.NewDesc("nurture_results_revenue",
		"Revenue of the purchases attributed to each campaign's sent deliveries, from the results rollups.", []string{"campaign"}, nil)
)

type resultsCollector struct {
	results func(ctx context.Context) ([]CampaignResults, error)
}

func (c *resultsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{resultsDeliveriesDesc, resultsOpenedDesc, resultsClickedDesc, resultsConvertedDesc, resultsRevenueDesc} {
		ch <- d
	}
}

func (c *resultsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	results, err := c.results(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(resultsDeliveriesDesc, err)
		return
	}
	for _, r := range results {
		for status, n := range r.Deliveries {
			ch <- prometheus.MustNewConstMetric(resultsDeliveriesDesc, prometheus.GaugeValue, float64(n), r.Campaign, status)
		}
		ch <- prometheus.MustNewConstMetric(resultsOpenedDesc, prometheus.GaugeValue, float64(r.Opened), r.Campaign)
		ch <- prometheus.MustNewConstMetric(resultsClickedDesc, prometheus.GaugeValue, float64(r.Clicked), r.Campaign)
		ch <- prometheus.MustNewConstMetric(resultsConvertedDesc, prometheus.GaugeValue, float64(r.Converted), r.Campaign)
		ch <- prometheus.MustNewConstMetric(resultsRevenueDesc, prometheus.GaugeValue, r.Revenue, r.Campaign)
	}
}
