package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"nurture/internal/importer"
	"nurture/internal/store"
)

// ingest answers POST /api/v1/customers and /api/v1/events: the body is
// split into items, which write validates and writes.
func (a *api) ingest(kind string, write func(r *http.Request, items [][]byte, opts importer.BatchOptions) (importer.BatchResult, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, ok := readBody(w, r)
		if !ok {
			return
		}
		partial, err := boolParam(r, "partial")
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		items, err := splitItems(body, isJSONLines(r.Header.Get("Content-Type")))
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		res, err := write(r, items, importer.BatchOptions{Partial: partial, Now: a.now})
		if err != nil {
			a.fail(w, "import "+kind, err)
			return
		}
		a.counted(kind, res)
		if len(res.Problems) > 0 && !partial {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": res.Problems})
			return
		}
		out := map[string]any{"accepted": res.Accepted, "duplicates": res.Duplicates}
		if len(res.Problems) > 0 {
			out["errors"] = res.Problems
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (a *api) postCustomers(r *http.Request, items [][]byte, opts importer.BatchOptions) (importer.BatchResult, error) {
	return a.group.CustomerBatch(r.Context(), items, opts)
}

func (a *api) postEvents(r *http.Request, items [][]byte, opts importer.BatchOptions) (importer.BatchResult, error) {
	return a.group.EventBatch(r.Context(), items, opts)
}

// counted counts a batch's items in the metrics.
func (a *api) counted(kind string, res importer.BatchResult) {
	invalid := map[int]bool{}
	for _, p := range res.Problems {
		invalid[p.Index] = true
	}
	a.m.Ingested(kind, "accepted", res.Accepted)
	a.m.Ingested(kind, "duplicate", res.Duplicates)
	a.m.Ingested(kind, "invalid", len(invalid))
}

// getCustomer answers GET /api/v1/customers/{id} with the explain view at
// the API's clock.
func (a *api) getCustomer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if a.explain == nil {
		writeError(w, http.StatusNotFound, "customer views are not served here")
		return
	}
	ex, err := a.explain(r.Context(), id, a.now())
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no customer with id %q", id))
		return
	}
	if err != nil {
		a.fail(w, "explain customer", err)
		return
	}
	writeJSON(w, http.StatusOK, ex)
}

// boolParam reads an optional true/false query parameter.
func boolParam(r *http.Request, name string) (bool, error) {
	switch v := r.URL.Query().Get(name); v {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	default:
		return false, fmt.Errorf("?%s=%q: want true or false", name, v)
	}
}

// isJSONLines says the body is JSON Lines, one value per line.
func isJSONLines(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "application/x-ndjson", "application/jsonl", "application/x-jsonlines", "application/json-seq":
		return true
	}
	return false
}

// splitItems splits a body into its items: one object, an array of
// values, or, for JSON Lines, one value per non-blank line. Malformed JSON
// is an error that says where, by line and column.
func splitItems(body []byte, jsonLines bool) ([][]byte, error) {
	if jsonLines {
		var items [][]byte
		rest, line := body, 0
		for len(rest) > 0 {
			line++
			var l []byte
			l, rest, _ = bytes.Cut(rest, []byte("\n"))
			l = bytes.TrimSpace(l)
			if len(l) == 0 {
				continue
			}
			if !json.Valid(l) {
				var v any
				err := json.Unmarshal(l, &v)
				var syntax *json.SyntaxError
				if errors.As(err, &syntax) {
					return nil, fmt.Errorf("malformed JSON on line %d, column %d: %v", line, syntax.Offset, err)
				}
				return nil, fmt.Errorf("malformed JSON on line %d: %v", line, err)
			}
			items = append(items, l)
		}
		if len(items) == 0 {
			return nil, errors.New("the body is empty: want JSON Lines, one object per line")
		}
		return items, nil
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, errors.New("the body is empty: want a JSON object or an array of them")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var items [][]byte
	if trimmed[0] == '[' {
		var raw []json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, positioned(body, err)
		}
		for _, r := range raw {
			items = append(items, r)
		}
	} else {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, positioned(body, err)
		}
		items = [][]byte{raw}
	}
	if dec.More() {
		line, col := lineCol(body, dec.InputOffset())
		return nil, fmt.Errorf("unexpected data after the JSON value at line %d, column %d; send several objects as an array, or as JSON Lines with Content-Type: application/x-ndjson", line, col)
	}
	return items, nil
}

// positioned says where a decoding error of body is.
func positioned(body []byte, err error) error {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		line, col := lineCol(body, syntax.Offset)
		return fmt.Errorf("malformed JSON at line %d, column %d: %v", line, col, err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		line, col := lineCol(body, int64(len(body)))
		return fmt.Errorf("malformed JSON: the body ends early, at line %d, column %d", line, col)
	}
	return fmt.Errorf("malformed JSON: %v", err)
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(body []byte, offset int64) (line, col int) {
	offset = min(max(offset, 0), int64(len(body)))
	before := body[:offset]
	line = 1 + bytes.Count(before, []byte("\n"))
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1)
	if col == 0 {
		col = 1
	}
	return line, col
}
