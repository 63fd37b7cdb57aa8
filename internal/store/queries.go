package store

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// queryFiles holds the SQL this package runs. Each file is a series of
// statements introduced by a "-- name: NAME" line.
//
//go:embed queries/*.sql
var queryFiles embed.FS

// Query names. Open checks that every one of them is defined.
const (
	qPendingVersionTable  = "migrations-version-table-exists"
	qAppliedVersions      = "migrations-applied-versions"
	qImportLock           = "import-lock"
	qImportCustomersTable = "import-customers-table"
	qImportCustomersClear = "import-customers-clear"
	qImportCustomersUpd   = "import-customers-update"
	qImportCustomersIns   = "import-customers-insert"
	qImportEventsTable    = "import-events-table"
	qImportEventsClear    = "import-events-clear"
	qImportEventsInsert   = "import-events-insert"
	qImportEventsExisting = "import-events-existing"
	qImportEventsSave     = "import-events-savepoint"
	qImportEventsRelease  = "import-events-release"
	qImportEventsRollback = "import-events-rollback"
	qImportEventsFacts    = "import-events-facts"
	qUnsubscribe          = "unsubscribe"
	qResubscribe          = "resubscribe"
	qConsentHistory       = "consent-history"
	qCandidates           = "candidates"
	qCustomers            = "customers"
	qCounts               = "counts"
	qActiveQueues         = "active-queues"
	qInsertDeliveries     = "insert-deliveries"
	qMarkQueued           = "mark-queued"
	qTouch                = "touch"
	qDetach               = "detach"
	qUnfinished           = "unfinished"
	qClaim                = "claim"
	qClaimUnclaimed       = "claim-unclaimed"
	qRecord               = "record"
	qDelivery             = "delivery"
	qDeliveries           = "deliveries"
	qDeliveryCounts       = "delivery-counts"
	qDeliveryStatuses     = "delivery-statuses"
	qUnfinishedAfterLoss  = "unfinished-after-loss"
	qRemoveSuppression    = "remove-suppression"
	qSuppressions         = "suppressions"
	qOptedOutAddresses    = "opted-out-addresses"
	qAddSuppressions      = "add-suppressions"
	qTryLeader            = "try-leader"
	qReleaseLeader        = "release-leader"
	qCapLock              = "cap-lock"
	qCapSends             = "cap-sends"
	qDueEvents            = "due-events"
	qDueStageEntries      = "due-stage-entries"
	qSweepLock            = "sweep-lock"
	qSweepTimes           = "sweep-times"
	qSweepCustomers       = "sweep-customers"
	qSweepCustomer        = "sweep-customer"
	qSweepTable           = "sweep-table"
	qSweepApply           = "sweep-apply"
	qSweepRecord          = "sweep-record"
	qStageHistory         = "stage-history"
	qCandidatesJourney    = "candidates-journey"
	qEnterJourneys        = "enter-journeys"
	qAdvanceJourneys      = "advance-journeys"
	qActiveJourneys       = "active-journeys"
	qExitRemovedJourneys  = "exit-removed-journeys"
	qJourneys             = "journeys"
	qExplainHistory       = "explain-history"
	qEvent                = "event"
	qDeferDeliveries      = "defer-deliveries"
	qCustomer             = "customer"
	qBounceLock           = "bounce-lock"
	qBounceInsert         = "bounce-insert"
	qBounceErased         = "bounce-erased"
	qBounceMarkDelivery   = "bounce-mark-delivery"
	qBounceSoftCount      = "bounce-soft-count"
	qBounceSuppress       = "bounce-suppress"
	qBounceCustomers      = "bounce-customers"
	qBounces              = "bounces"
	qDeliveryBounces      = "delivery-bounces"
	qAttributionLock      = "attribution-lock"
	qAttributionProgress  = "attribution-progress"
	qAttribute            = "attribute"
	qReport               = "report"
	qEraseCustomer        = "erase-customer"
	qEraseDeliveries      = "erase-deliveries"
	qEraseJourneys        = "erase-journeys"
	qEraseEvents          = "erase-events"
	qEraseConsent         = "erase-consent"
	qEraseStages          = "erase-stages"
	qEraseLog             = "erase-log"
	qEraseScrub           = "erase-scrub"
	qEraseClicks          = "erase-clicks"
	qRecordHits           = "record-hits"
	qDeliveryTracking     = "delivery-tracking"
	qDeliveryClicks       = "delivery-clicks"
	qRollupTryLock        = "rollup-try-lock"
	qRollupProgress       = "rollup-progress"
	qRollupDirtyTable     = "rollup-dirty-table"
	qRollupDirty          = "rollup-dirty"
	qRollupDirtyAll       = "rollup-dirty-all"
	qRollupDirtyAnalyze   = "rollup-dirty-analyze"
	qRollupCountAll       = "rollup-count-all"
	qRollupClear          = "rollup-clear"
	qRollupCount          = "rollup-count"
	qRollupDone           = "rollup-done"
	qRollupRefreshedAt    = "rollup-refreshed-at"
	qCampaignTotals       = "campaign-totals"
	qCampaignDays         = "campaign-days"
	qSweepCounts          = "sweep-counts"
	qSweepCountsClear     = "sweep-counts-clear"
	qSweepFlows           = "sweep-flows"
	qStageDays            = "stage-days"
	qStageLatest          = "stage-latest"
	qStageFlows           = "stage-flows"
)

var queryNames = []string{
	qPendingVersionTable, qAppliedVersions,
	qImportLock, qImportCustomersTable, qImportCustomersClear, qImportCustomersUpd, qImportCustomersIns,
	qImportEventsTable, qImportEventsClear, qImportEventsInsert,
	qImportEventsExisting, qImportEventsSave, qImportEventsRelease, qImportEventsRollback, qImportEventsFacts,
	qUnsubscribe, qResubscribe, qConsentHistory, qCandidates, qCustomers, qCounts, qActiveQueues, qServerVersion,
	qScratchReset, qScratchClearDeliveries, qScratchVacuum,
	qScratchClearStages, qScratchShiftOrders, qScratchDeleteCustomers, qScratchCopyTable, qScratchCopyTableIndexed, qScratchCopyDrop,
	qInsertDeliveries, qMarkQueued, qTouch, qDetach, qUnfinished, qClaim, qClaimUnclaimed, qRecord,
	qDelivery, qDeliveries, qDeliveryCounts, qTryLeader, qReleaseLeader,
	qDeliveryStatuses, qUnfinishedAfterLoss, qRemoveSuppression, qSuppressions, qOptedOutAddresses, qAddSuppressions,
	qCapLock, qCapSends,
	qDueEvents, qDueStageEntries, qSweepLock, qSweepTimes, qSweepCustomers, qSweepCustomer, qSweepTable, qSweepApply, qSweepRecord,
	qStageHistory,
	qCandidatesJourney, qEnterJourneys, qAdvanceJourneys, qActiveJourneys, qExitRemovedJourneys, qJourneys,
	qExplainHistory, qEvent,
	qDeferDeliveries, qCustomer,
	qBounceLock, qBounceInsert, qBounceErased, qBounceMarkDelivery, qBounceSoftCount, qBounceSuppress, qBounceCustomers,
	qBounces, qDeliveryBounces,
	qAttributionLock, qAttributionProgress, qAttribute, qReport,
	qEraseCustomer, qEraseDeliveries, qEraseJourneys, qEraseEvents, qEraseConsent, qEraseStages, qEraseLog, qEraseScrub, qEraseClicks,
	qRecordHits, qDeliveryTracking, qDeliveryClicks,
	qRollupTryLock, qRollupProgress, qRollupDirtyTable, qRollupDirty, qRollupDirtyAll, qRollupDirtyAnalyze, qRollupClear, qRollupCount, qRollupCountAll, qRollupDone, qRollupRefreshedAt,
	qCampaignTotals, qCampaignDays, qSweepCounts, qSweepCountsClear, qSweepFlows, qStageDays, qStageLatest, qStageFlows,
}

// queries maps a query name to its SQL.
type queries map[string]string

// loadQueries reads every named query from fsys and checks that each name
// in want is defined exactly once.
func loadQueries(fsys fs.FS, dir string, want []string) (queries, error) {
	files, err := fs.Glob(fsys, path.Join(dir, "*.sql"))
	if err != nil {
		return nil, err
	}
	q := queries{}
	for _, file := range files {
		b, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, err
		}
		if err := q.parse(file, string(b)); err != nil {
			return nil, err
		}
	}
	for _, name := range want {
		if _, ok := q[name]; !ok {
			return nil, fmt.Errorf("query %q is not defined in %s", name, dir)
		}
	}
	return q, nil
}

func (q queries) parse(file, text string) error {
	const marker = "-- name:"
	name := ""
	var body strings.Builder
	flush := func() error {
		if name == "" {
			return nil
		}
		sql := strings.TrimSpace(body.String())
		if sql == "" {
			return fmt.Errorf("%s: query %q is empty", file, name)
		}
		if _, dup := q[name]; dup {
			return fmt.Errorf("%s: query %q is defined twice", file, name)
		}
		q[name] = sql
		body.Reset()
		return nil
	}
	for i, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), marker); ok {
			if err := flush(); err != nil {
				return err
			}
			name = strings.TrimSpace(rest)
			if name == "" {
				return fmt.Errorf("%s:%d: query without a name", file, i+1)
			}
			continue
		}
		if name == "" {
			continue // file header comments
		}
		body.WriteString(line)
		body.WriteByte('\n')
	}
	return flush()
}

// get returns the SQL of a query that loadQueries checked exists.
func (q queries) get(name string) string {
	sql, ok := q[name]
	if !ok {
		panic("store: unknown query " + name)
	}
	return sql
}
