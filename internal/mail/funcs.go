package mail

import (
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"reflect"
	"strconv"
	"strings"
	texttemplate "text/template"
)

// funcs is the small function set every template gets:
//
//	{{.FirstName | default "there"}}   fallback when the value is empty
//	{{money .TotalSpent}}              a number with two decimals: 42.50
//	{{attr . "coupon" "WELCOME10"}}    an attribute, or the fallback when the
//	                                   customer lacks it (no missingkey error)
var funcs = map[string]any{
	"default": defaultValue,
	"money":   money,
	"attr":    attr,
}

var (
	textFuncs = texttemplate.FuncMap(funcs)
	htmlFuncs = htmltemplate.FuncMap(funcs)
)

// defaultValue returns v, or def when v is empty: nil, a blank string, a
// zero number, false, or an empty map, slice or array.
func defaultValue(def, v any) any {
	if isEmpty(v) {
		return def
	}
	return v
}

func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	if s, ok := v.(string); ok {
		return strings.TrimSpace(s) == ""
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		return rv.IsNil() || isEmpty(rv.Elem().Interface())
	case reflect.Map, reflect.Slice, reflect.Array:
		return rv.Len() == 0
	}
	return rv.IsZero()
}

// money formats a number with two decimals. Attributes decoded from JSON
// arrive as float64, json.Number or, from careless importers, strings.
func money(v any) (string, error) {
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case float32:
		f = float64(n)
	case int:
		f = float64(n)
	case int64:
		f = float64(n)
	case int32:
		f = float64(n)
	case json.Number:
		var err error
		if f, err = n.Float64(); err != nil {
			return "", fmt.Errorf("money: %q is not a number", n)
		}
	case string:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(n), 64); err != nil {
			return "", fmt.Errorf("money: %q is not a number", n)
		}
	default:
		return "", fmt.Errorf("money: want a number, got %T", v)
	}
	return strconv.FormatFloat(f, 'f', 2, 64), nil
}

// attr returns the customer attribute key, or the fallback (default "")
// when the attribute is absent, null or a blank string. Zero numbers and
// false are real values and are returned as they are.
func attr(d *Data, key string, fallback ...any) (any, error) {
	if len(fallback) > 1 {
		return nil, fmt.Errorf("attr: want at most one fallback, got %d", len(fallback))
	}
	var def any = ""
	if len(fallback) == 1 {
		def = fallback[0]
	}
	if d == nil {
		return def, nil
	}
	v, ok := d.Attributes[key]
	if s, isString := v.(string); !ok || v == nil || isString && strings.TrimSpace(s) == "" {
		return def, nil
	}
	return v, nil
}
