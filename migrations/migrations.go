// Package migrations holds nurture's numbered SQL migrations, embedded in
// the binary so that `nurture migrate` needs no files on disk.
package migrations

import "embed"

// FS holds every migration file, named NNNN_description.sql.
//
//go:embed *.sql
var FS embed.FS
