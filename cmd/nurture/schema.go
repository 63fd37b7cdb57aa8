package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"nurture/internal/schema"
)

// schemaCmd prints the JSON Schema of the campaign files: all of them in
// one document, or one kind with --file.
func (a *app) schemaCmd(_ context.Context, args []string) error {
	fs := a.flags("schema")
	file := fs.String("file", "", "print the schema of one kind of file alone: "+strings.Join(schema.Kinds(), ", "))
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return exitError{code: 2}
	}
	if *file != "" && !slices.Contains(schema.Kinds(), *file) {
		return exitError{code: 2, msg: fmt.Sprintf("nurture schema: --file %q: want one of %s", *file, strings.Join(schema.Kinds(), ", "))}
	}
	b, err := schema.JSON(*file)
	if err != nil {
		return err
	}
	_, err = a.stdout.Write(b)
	return err
}
