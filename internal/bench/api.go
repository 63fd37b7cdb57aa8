package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"nurture/internal/api"
	"nurture/internal/httpserver"
	"nurture/internal/importer"
)

// apiToken is the bearer token of part i's API.
const apiToken = "bench-api-token-0123456789"

// apiIngest is part i: events posted to the ingest API in batches of
// APIBatch by APIClients clients over kept-alive connections, against the
// importer reading the same number of events from files of EventFile.
// Both write fresh events of the same shape (abandoned carts of the last
// day) for the event customers.
func (b *bench) apiIngest(ctx context.Context) error {
	undo, err := b.eventSetUp(ctx)
	if err != nil {
		return err
	}
	defer undo()
	n, per := b.cfg.APIEvents, b.cfg.EventFile
	// The API's events follow the importer's in time, so that both move
	// every customer's last event.
	imported, posted := feed(b.cfg.At.Add(-23*time.Hour), 11*time.Hour, n), feed(b.cfg.At.Add(-12*time.Hour), 11*time.Hour, n)
	now := func() time.Time { return b.cfg.At }

	// The baseline: the importer over files made before the clock starts.
	var files [][]byte
	for from := 0; from < n; from += per {
		_, lines, err := eventBatch("i-import", "cart_abandoned", from, min(per, n-from), imported)
		if err != nil {
			return err
		}
		files = append(files, lines)
	}
	b.progress("API ingest: baseline, %d events through the importer, %d per file", n, per)
	start := time.Now()
	done := 0
	for _, f := range files {
		res, err := importer.Events(ctx, b.st.Store, bytes.NewReader(f), "bench-events.jsonl", importer.Options{Now: now})
		if err != nil {
			return err
		}
		done += res.Imported
	}
	importTime := time.Since(start)

	// The API in this process, on a loopback port, as the HTTP role
	// serves it.
	srv, err := httpserver.New(httpserver.Config{Addr: "127.0.0.1:0", APITokens: []string{apiToken}},
		httpserver.Deps{Store: b.st.Store, Redis: b.rdb, Metrics: http.NotFoundHandler(),
			API: api.Handler(b.st.Store, api.Config{Now: now}, b.log)}, b.log)
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer srv.Stop(context.WithoutCancel(ctx))
	var bodies [][]byte
	for from := 0; from < n; from += b.cfg.APIBatch {
		_, lines, err := eventBatch("i-api", "cart_abandoned", from, min(b.cfg.APIBatch, n-from), posted)
		if err != nil {
			return err
		}
		bodies = append(bodies, lines)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: b.cfg.APIClients}}
	defer client.CloseIdleConnections()
	url := "http://" + srv.Addr() + "/api/v1/events"
	b.progress("API ingest: %d events posted in batches of %d by %d clients", n, b.cfg.APIBatch, b.cfg.APIClients)
	var (
		next, accepted atomic.Int64
		wg             sync.WaitGroup
		errs           = make(chan error, b.cfg.APIClients)
	)
	start = time.Now()
	for range b.cfg.APIClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(bodies) {
					return
				}
				got, err := postEvents(ctx, client, url, bodies[i])
				if err != nil {
					errs <- err
					return
				}
				accepted.Add(int64(got))
			}
		}()
	}
	wg.Wait()
	apiTime := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if int(accepted.Load()) != n || done != n {
		return fmt.Errorf("API ingest: %d events accepted by the API and %d imported, want %d each", accepted.Load(), done, n)
	}
	r := rate(n, apiTime)
	b.add(result{
		name: fmt.Sprintf("(i) API ingest: %s abandoned carts posted to POST /api/v1/events as JSON Lines in batches of %d by %d clients over kept-alive connections",
			count(float64(n)), b.cfg.APIBatch, b.cfg.APIClients),
		value:    fmt.Sprintf("%s events/s (%s; %s accepted)", count(r), secs(apiTime), count(float64(accepted.Load()))),
		baseline: fmt.Sprintf("the importer on the same number of events, files of %s: %s/s (%s)", count(float64(per)), count(rate(done, importTime)), secs(importTime)),
		ratio:    apiTime.Seconds() / importTime.Seconds(),
		target:   "≥ 20,000 events/s",
		met:      met(r >= 20_000),
	})
	return nil
}

// postEvents posts one batch and returns how many events it accepted.
func postEvents(ctx context.Context, client *http.Client, url string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+apiToken)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("POST /api/v1/events: %d %s", resp.StatusCode, out)
	}
	var res struct {
		Accepted int `json:"accepted"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, fmt.Errorf("POST /api/v1/events: %w: %s", err, out)
	}
	return res.Accepted, nil
}
