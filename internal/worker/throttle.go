package worker

import (
	"context"
	"errors"
	"strings"

	"nurture/internal/campaign"
	nmail "nurture/internal/mail"
	"nurture/internal/metrics"
	"nurture/internal/throttle"
)

// How sends are paced
//
// Before it takes an SMTP connection, a send books a slot with the
// throttle (package throttle): the global rate and its recipient domain's
// rate of settings.yaml's rate_limits, and any backoff of the domain, all
// shared by every worker process through Redis. It waits for the slot in
// its handler, holding an Asynq worker but no SMTP connection, and honours
// the task's context: a shutdown or the task's timeout ends the wait and
// the task runs again (nothing was sent). A slot more than MaxWait away is
// not booked: the delivery is deferred (see deferral.go) to when the slot
// is expected, without using up a retry, so no wait comes near the task's
// timeout (2 minutes by default) and a long backoff does not hold workers.
//
// A 421 or 452 reply slows the recipient domain down for everyone: a
// backoff in Redis (exponential, capped) during which every delivery to
// the domain waits or is deferred; the first accepted email after the
// backoff ends the episode. The start and the end of an episode are
// logged once among all processes.
//
// When Redis cannot be asked, nothing is sent: the handler fails with
// ErrInfrastructure, so the task runs again without using up a retry.

// reasonThrottled marks a deferral by the throttle rather than by the
// send window.
const reasonThrottled = "throttled"

// recipientDomain is the lower-case domain of an address.
func recipientDomain(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	return strings.ToLower(strings.TrimSpace(strings.TrimSuffix(addr[i+1:], ">")))
}

// limitsFor turns the settings' rate limits into the throttle's, for an
// email to domain.
func limitsFor(rl *campaign.RateLimits, domain string) throttle.Limits {
	var lim throttle.Limits
	if rl == nil {
		return lim
	}
	if rl.Global != nil {
		lim.Global = rl.Global.Interval()
	}
	if r, ok := rl.Domains[domain]; ok {
		lim.Domain = r.Interval()
	}
	return lim
}

// slowsDown reports whether a send error is a reply that asks the sender
// to slow down: 421 (service not available, closing) or 452 (insufficient
// storage, too many recipients or messages).
func slowsDown(err error) (*nmail.SendError, bool) {
	var se *nmail.SendError
	if errors.As(err, &se) && (se.Code == 421 || se.Code == 452) {
		return se, true
	}
	return nil, false
}

// slowDown starts or lengthens the backoff of domain after a send failed
// with a reply that asks for it.
func (w *Worker) slowDown(ctx context.Context, domain string, err error) {
	se, ok := slowsDown(err)
	if !ok {
		return
	}
	// The send's context may have ended with the reply; the backoff must
	// still be recorded.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	b, berr := w.throttle.SlowDown(bctx, domain)
	if berr != nil {
		w.metrics.InfraError("redis", "throttle")
		w.infra.Trouble("redis", "Redis unavailable; a domain's backoff could not be recorded", berr, "domain", domain)
		return
	}
	switch {
	case b.Started:
		w.metrics.DomainBackoff(metrics.BackoffStarted)
		w.log.Warn("recipient domain asked us to slow down; its deliveries wait", "domain", domain,
			"reply", se.Error(), "backoff", b.For)
	case b.Extended:
		w.metrics.DomainBackoff(metrics.BackoffExtended)
		w.log.Debug("recipient domain still asks us to slow down; longer backoff", "domain", domain,
			"reply", se.Error(), "backoff", b.For, "level", b.Level)
	}
}

// recovered ends domain's backoff episode after an accepted email.
func (w *Worker) recovered(ctx context.Context, domain string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	ended, err := w.throttle.Recover(rctx, domain)
	if err != nil {
		// The episode ends with a later success.
		w.metrics.InfraError("redis", "throttle")
		w.infra.Trouble("redis", "Redis unavailable; a domain's backoff could not be ended", err, "domain", domain)
		return
	}
	if ended {
		w.metrics.DomainBackoff(metrics.BackoffRecovered)
		w.log.Info("recipient domain accepts email again; backoff over", "domain", domain)
	}
}
