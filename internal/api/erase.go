package api

import (
	"errors"
	"fmt"
	"net/http"

	"nurture/internal/store"
)

// erasure is what DELETE /api/v1/customers/{id} answers: how many rows
// were kept without the person, and deliveries a worker was still sending
// when the call gave up waiting (normally 0).
type erasure struct {
	Erased         bool `json:"erased"`
	Deliveries     int  `json:"deliveries"`
	Cancelled      int  `json:"cancelled"`
	Events         int  `json:"events"`
	Journeys       int  `json:"journeys"`
	ConsentChanges int  `json:"consent_changes"`
	StageChanges   int  `json:"stage_changes"`
	StillSending   int  `json:"still_sending"`
}

// eraseCustomer erases the person (store.Erase) and answers 200 with what
// was done, or 404 when nothing is stored under the id (also the second
// time).
func (a *api) eraseCustomer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	res, err := a.st.Erase(r.Context(), id, store.ErasedByAPI)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no customer with id %q", id))
		return
	case err != nil && res.Sending == 0:
		a.fail(w, "erase", err)
		return
	case err != nil:
		// Erased and committed; only the wait for sends in flight failed.
		a.log.Error("api: erased a customer, but waiting for deliveries being sent to them failed", "err", err)
	}
	if res.StillSending > 0 {
		a.log.Warn("api: erased a customer while deliveries to them were still being sent; they may go out",
			"deliveries", res.StillSending)
	}
	writeJSON(w, http.StatusOK, erasure{Erased: true, Deliveries: res.Deliveries, Cancelled: res.Cancelled, Events: res.Events,
		Journeys: res.Journeys, ConsentChanges: res.ConsentChanges, StageChanges: res.StageChanges,
		StillSending: res.StillSending})
}
