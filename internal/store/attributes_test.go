package store

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// TestAttrDecoder: rows with the same attributes get one map, equal to
// what decoding them alone gives; other attributes, long ones and those
// past the bound are decoded for their row; bad ones fail as before.
func TestAttrDecoder(t *testing.T) {
	same := func(a, b map[string]any) bool {
		return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
	}
	var d attrDecoder
	free, err := d.decode([]byte(`{"plan": "free"}`), false)
	if err != nil {
		t.Fatal(err)
	}
	again, err := d.decode([]byte(`{"plan": "free"}`), false)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"plan": "free"}; !reflect.DeepEqual(again, want) || !same(free, again) {
		t.Errorf("same attributes: %v and %v, want one map %v", free, again, want)
	}
	pro, err := d.decode([]byte(`{"plan": "pro"}`), false)
	if err != nil || !reflect.DeepEqual(pro, map[string]any{"plan": "pro"}) || same(free, pro) {
		t.Errorf("other attributes: %v, %v; want a map of their own", pro, err)
	}
	// Binary jsonb: a version byte, then the text.
	bin, err := d.decode([]byte("\x01{\"plan\": \"free\"}"), true)
	if err != nil || !reflect.DeepEqual(bin, free) {
		t.Errorf("binary: %v, %v; want %v", bin, err, free)
	}
	if _, err := d.decode([]byte("\x02{\"plan\": \"free\"}"), true); err == nil || !strings.Contains(err.Error(), "unknown jsonb format") {
		t.Errorf("binary of another version: %v, want unknown jsonb format", err)
	}
	if m, err := d.decode([]byte(`{}`), false); m != nil || err != nil {
		t.Errorf("empty object: %v, %v; want nil", m, err)
	}
	if _, err := d.decode([]byte(`{"plan": `), false); err == nil || !strings.HasPrefix(err.Error(), "attributes: ") {
		t.Errorf("bad JSON: %v, want an attributes error", err)
	}

	long := []byte(fmt.Sprintf(`{"note": %q}`, strings.Repeat("x", attrDecoderLen)))
	a, _ := d.decode(long, false)
	b, _ := d.decode(long, false)
	if !reflect.DeepEqual(a, b) || same(a, b) {
		t.Errorf("long attributes: shared %v, want equal maps of their own", same(a, b))
	}

	var full attrDecoder
	for i := range attrDecoderSets {
		if _, err := full.decode([]byte(fmt.Sprintf(`{"n": %d}`, i)), false); err != nil {
			t.Fatal(err)
		}
	}
	past := []byte(`{"n": "past"}`)
	a, _ = full.decode(past, false)
	b, _ = full.decode(past, false)
	if len(full.seen) != attrDecoderSets || !reflect.DeepEqual(a, map[string]any{"n": "past"}) || same(a, b) {
		t.Errorf("past the bound: %d sets held, shared %v; want %d, equal maps of their own", len(full.seen), same(a, b), attrDecoderSets)
	}
}
