// Package schema generates JSON Schemas (draft 2020-12) of the files
// marketers edit: campaigns, lifecycle.yaml and settings.yaml. Editors use
// them to complete and check YAML as it is typed; `nurture lint` remains
// the judge (expressions, templates, stage names and cron specs are beyond
// a schema). The schemas come from the Go types in shape.go, which a test
// holds to the keys package campaign decodes.
package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"

	"github.com/invopop/jsonschema"
)

// Kinds are the kinds of file with a schema, as `nurture schema --file`
// names them.
func Kinds() []string { return []string{"campaign", "lifecycle", "settings"} }

func shapeOf(kind string) (reflect.Type, bool) {
	switch kind {
	case "campaign":
		return reflect.TypeFor[Campaign](), true
	case "lifecycle":
		return reflect.TypeFor[Lifecycle](), true
	case "settings":
		return reflect.TypeFor[Settings](), true
	}
	return nil, false
}

var titles = map[string]string{
	"campaign":  "nurture campaign (campaigns/*.yaml)",
	"lifecycle": "nurture lifecycle stages (campaigns/lifecycle.yaml)",
	"settings":  "nurture settings (campaigns/settings.yaml)",
}

// File returns the schema of one kind of file, with the definitions it
// uses.
func File(kind string) (*jsonschema.Schema, error) {
	t, ok := shapeOf(kind)
	if !ok {
		return nil, fmt.Errorf("unknown kind of file %q; the kinds are campaign, lifecycle, settings", kind)
	}
	r := &jsonschema.Reflector{
		Anonymous:                  true,
		ExpandedStruct:             true,
		RequiredFromJSONSchemaTags: true,
	}
	s := r.ReflectFromType(t)
	if kind == "campaign" {
		// CampaignWindow refers to Window by hand: reflect it too.
		w := r.ReflectFromType(reflect.TypeFor[Window]())
		for name, d := range w.Definitions {
			s.Definitions[name] = d
		}
		w.Definitions, w.Version = nil, ""
		s.Definitions["Window"] = w
	}
	s.Title = titles[kind]
	allowNull(s)
	for _, d := range s.Definitions {
		allowNull(d)
	}
	return s, nil
}

// Document returns one schema holding every kind under $defs, next to the
// definitions they share.
func Document() (*jsonschema.Schema, error) {
	doc := &jsonschema.Schema{
		Version:     jsonschema.Version,
		Title:       "nurture campaign files",
		Description: "The schemas of campaigns/*.yaml, lifecycle.yaml and settings.yaml under $defs.",
		Definitions: jsonschema.Definitions{},
	}
	for _, kind := range Kinds() {
		s, err := File(kind)
		if err != nil {
			return nil, err
		}
		for name, d := range s.Definitions {
			doc.Definitions[name] = d
		}
		s.Definitions, s.Version = nil, ""
		doc.Definitions[kind] = s
	}
	return doc, nil
}

// JSON returns the schema of kind as indented JSON with a final newline;
// an empty kind is the whole Document.
func JSON(kind string) ([]byte, error) {
	var (
		s   *jsonschema.Schema
		err error
	)
	if kind == "" {
		s, err = Document()
	} else {
		s, err = File(kind)
	}
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	// The schema's own marshalling escapes <, > and & for HTML; these
	// files are read by editors and people.
	b := bytes.ReplaceAll(buf.Bytes(), []byte(`\u003c`), []byte("<"))
	b = bytes.ReplaceAll(b, []byte(`\u003e`), []byte(">"))
	return bytes.ReplaceAll(b, []byte(`\u0026`), []byte("&")), nil
}

// allowNull lets every optional key of s hold null, which campaign.Load
// reads as absent ("description:" with nothing after it).
func allowNull(s *jsonschema.Schema) {
	if s == nil || s.Properties == nil {
		return
	}
	for p := s.Properties.Oldest(); p != nil; p = p.Next() {
		if slices.Contains(s.Required, p.Key) {
			continue
		}
		v := p.Value
		p.Value = &jsonschema.Schema{Description: v.Description, AnyOf: []*jsonschema.Schema{v, {Type: "null"}}}
		v.Description = ""
	}
}
