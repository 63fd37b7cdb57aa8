package api_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"nurture/internal/importer"
	"nurture/internal/store"
)

func TestEraseAPI(t *testing.T) {
	base, st := serve(t)
	ctx := context.Background()
	lines := `{"id":"c1","email":"Ann.Zq@example.com","first_name":"Annzq","created_at":"2026-01-01T00:00:00Z","attributes":{"plan":"pro-zq"}}` + "\n" +
		`{"id":"c2","email":"bo@example.com","created_at":"2026-01-01T00:00:00Z"}` + "\n"
	if res, err := importer.Customers(ctx, st, strings.NewReader(lines), "c.jsonl", importer.Options{Strict: true}); err != nil || res.Bad > 0 {
		t.Fatal(err, res.Problems)
	}
	events := `{"id":"e1","customer_id":"c1","type":"purchase","occurred_at":"2026-02-01T00:00:00Z","amount":5,"properties":{"gift":"Annzq"}}` + "\n"
	if res, err := importer.Events(ctx, st, strings.NewReader(events), "e.jsonl", importer.Options{Strict: true}); err != nil || res.Bad > 0 {
		t.Fatal(err, res.Problems)
	}
	auth := "Bearer " + token
	for _, tt := range []struct {
		auth, path string
		code       int
		want       string
	}{
		{"", "/api/v1/customers/c1", 401, `{"error":"a bearer token from API_TOKENS is required"}`},
		{"Bearer wrong-token-wrong-token", "/api/v1/customers/c1", 401, `{"error":"a bearer token from API_TOKENS is required"}`},
		{auth, "/api/v1/customers/nobody", 404, `{"error":"no customer with id \"nobody\""}`},
		{auth, "/api/v1/customers/c1", 200,
			`{"erased":true,"deliveries":0,"cancelled":0,"events":1,"journeys":0,"consent_changes":0,"stage_changes":0,"still_sending":0}`},
		// Erasing twice changes nothing: the id is unknown now.
		{auth, "/api/v1/customers/c1", 404, `{"error":"no customer with id \"c1\""}`},
	} {
		if code, body := call(t, "DELETE", base+tt.path, tt.auth, ""); code != tt.code || body != tt.want+"\n" {
			t.Errorf("DELETE %s (auth %q): %d %s\nwant %d %s", tt.path, tt.auth, code, body, tt.code, tt.want)
		}
	}
	if _, err := st.Customer(ctx, "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("customer c1 after DELETE: %v, want ErrNotFound", err)
	}
	if c, err := st.Customer(ctx, "c2"); err != nil || c.Email != "bo@example.com" {
		t.Errorf("customer c2 after DELETE of c1: %+v, %v", c, err)
	}
	// The address comes back from the CRM under another id: suppressed.
	again := `{"id":"c9","email":"ann.zq@EXAMPLE.com","created_at":"2026-01-01T00:00:00Z"}` + "\n"
	if res, err := importer.Customers(ctx, st, strings.NewReader(again), "c.jsonl", importer.Options{Strict: true}); err != nil || res.Bad > 0 {
		t.Fatal(err, res.Problems)
	}
	if c, err := st.Customer(ctx, "c9"); err != nil || !c.Suppressed {
		t.Errorf("customer c9 with the erased address: %+v, %v; want suppressed", c, err)
	}
}
