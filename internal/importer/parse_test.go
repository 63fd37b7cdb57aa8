package importer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/mail"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// addLines seeds a fuzz corpus with the lines of a testdata file.
func addLines(f *testing.F, name string) {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		f.Fatal(err)
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		f.Add(append([]byte(nil), s.Bytes()...))
	}
}

func isObject(b []byte) bool {
	var m map[string]any
	return b == nil || json.Unmarshal(b, &m) == nil && bytes.HasPrefix(b, []byte("{"))
}

func FuzzParseCustomer(f *testing.F) {
	addLines(f, "customers.jsonl")
	addLines(f, "limits-customers.jsonl")
	p := newCustomerParser()
	f.Fuzz(func(t *testing.T, line []byte) {
		c, reasons := p.parse(line)
		if len(reasons) > 0 {
			return
		}
		if strings.TrimSpace(c.ID) == "" {
			t.Errorf("accepted an empty id: %q", line)
		}
		if a, err := mail.ParseAddress(c.Email); err != nil || a.Address != c.Email {
			t.Errorf("accepted email %q", c.Email)
		}
		if !isObject(c.Attributes) {
			t.Errorf("accepted attributes %q", c.Attributes)
		}
	})
}

func FuzzParseEvent(f *testing.F) {
	addLines(f, "events.jsonl")
	addLines(f, "limits-events.jsonl")
	p := eventParser{latest: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	f.Fuzz(func(t *testing.T, line []byte) {
		e, reasons := p.parse(line)
		if len(reasons) > 0 {
			return
		}
		if strings.TrimSpace(e.CustomerID) == "" || strings.TrimSpace(e.Type) == "" || e.OccurredAt.IsZero() || e.OccurredAt.After(p.latest) {
			t.Errorf("accepted %q as %+v", line, e)
		}
		if e.Amount != nil && (*e.Amount >= maxAmount || *e.Amount <= -maxAmount) {
			t.Errorf("accepted amount %v", *e.Amount)
		}
		if !isObject(e.Properties) {
			t.Errorf("accepted properties %q", e.Properties)
		}
	})
}

func BenchmarkParseCustomer(b *testing.B) {
	line := []byte(`{"id":"c1","email":"a@x.com","first_name":"Ann","timezone":"Europe/Paris","subscribed":true,"created_at":"2026-01-02T15:04:05Z","attributes":{"plan":"pro"}}`)
	p := newCustomerParser()
	for b.Loop() {
		if _, r := p.parse(line); len(r) > 0 {
			b.Fatal(r)
		}
	}
}

func BenchmarkParseEvent(b *testing.B) {
	line := []byte(`{"customer_id":"c1","type":"purchase","occurred_at":"2026-03-01T10:00:00Z","amount":42.5,"properties":{}}`)
	p := eventParser{latest: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	for b.Loop() {
		if _, r := p.parse(line); len(r) > 0 {
			b.Fatal(r)
		}
	}
}

// FuzzDuplicateKey checks the byte scanner of duplicateKey against a
// plain walk over json.Decoder tokens.
func FuzzDuplicateKey(f *testing.F) {
	addLines(f, "customers.jsonl")
	addLines(f, "events.jsonl")
	addLines(f, "limits-customers.jsonl")
	addLines(f, "limits-events.jsonl")
	f.Fuzz(func(t *testing.T, line []byte) {
		if !json.Valid(line) || !utf8.Valid(line) {
			return // decodeObject refuses these before looking for keys
		}
		_, key, found := duplicateKey(line)
		d := json.NewDecoder(bytes.NewReader(line))
		wantKey, wantFound := tokenDuplicate(d)
		if found != wantFound || key != wantKey {
			t.Errorf("duplicateKey(%q) = %q, %v; want %q, %v", line, key, found, wantKey, wantFound)
		}
	})
}

func tokenDuplicate(d *json.Decoder) (string, bool) {
	tok, err := d.Token()
	if err != nil {
		return "", false
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for d.More() {
			tok, _ := d.Token()
			k := tok.(string)
			if seen[k] {
				return k, true
			}
			seen[k] = true
			if k, found := tokenDuplicate(d); found {
				return k, true
			}
		}
		d.Token()
	case json.Delim('['):
		for d.More() {
			if k, found := tokenDuplicate(d); found {
				return k, true
			}
		}
		d.Token()
	}
	return "", false
}

// FuzzPlainObject checks that an object jsonObject keeps as it is holds
// what the re-encoded one would, and that plainString reads strings as
// json.Unmarshal does.
func FuzzPlainObject(f *testing.F) {
	for _, s := range []string{`{}`, `{ }`, `{"a":1,"b":[1.5e3,-2,{"c":"d"}],"e":null,"f":true}`, `{"n":1e400}`,
		`{"n":-1e-400}`, `{"s":"\u0000"}`, `{"s":"\ud800"}`, `{"s":"<&>é"}`, `"plain"`, `"esc\"aped"`, `[1]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) || !utf8.Valid(raw) {
			return // decodeObject refuses these first
		}
		raw = bytes.TrimSpace(raw)
		if s, ok := plainString(raw); ok {
			var want string
			if err := json.Unmarshal(raw, &want); err != nil || s != want {
				t.Errorf("plainString(%q) = %q, want %q (%v)", raw, s, want, err)
			}
		}
		if !plainObject(raw) {
			return
		}
		kept := (&object{fields: map[string]json.RawMessage{"p": raw}}).jsonObject("p")
		slow := &object{fields: map[string]json.RawMessage{"p": append([]byte(" "), raw...)}} // not plain: re-encoded
		encoded := slow.jsonObject("p")
		if len(slow.reasons) > 0 {
			t.Fatalf("plainObject kept %q, which the re-encoding refuses: %v", raw, slow.reasons)
		}
		var a, b any
		if json.Unmarshal(kept, &a) != nil || json.Unmarshal(encoded, &b) != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("kept %q, re-encoded %q: not the same value", kept, encoded)
		}
	})
}
