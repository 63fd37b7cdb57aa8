// Package scratch guards the commands that empty what they are pointed at
// (the demo and the benchmark): they refuse a database or Redis DB that
// does not look like one of their own.
package scratch

import (
	"fmt"
	"net/url"
	"path"
	"strings"

	"nurture/internal/queue"
)

// Guard names what a command does to its database and Redis DB, for the
// refusal messages.
type Guard struct {
	Word      string // the database's name must contain it, e.g. "demo"
	Database  string // what the command does to it: "the demo empties its database"
	Redis     string // likewise for Redis: "the demo empties its Redis DB"
	RedisHint string // a Redis URL to suggest instead of DB 0
}

// Check refuses a database whose name lacks g.Word, and Redis DB 0.
func (g Guard) Check(databaseURL, redisURL string) error {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return fmt.Errorf("--database-url: %w", err)
	}
	if db := path.Base(u.Path); !strings.Contains(db, g.Word) {
		return fmt.Errorf("--database-url: %s; %q must have %q in its name", g.Database, db, g.Word)
	}
	o, err := queue.RedisOptions(redisURL)
	if err != nil {
		return err
	}
	if o.DB == 0 {
		return fmt.Errorf("--redis-url %s: %s; use a DB other than 0, such as %s", Redact(redisURL), g.Redis, g.RedisHint)
	}
	return nil
}

// Redact hides the password in a URL.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<unparseable URL>"
	}
	return u.Redacted()
}

// AdminURL returns the URL of the postgres database on the server of
// databaseURL, from which its database can be dropped and created, and
// the name of that database.
func AdminURL(databaseURL string) (admin, name string, err error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "", "", fmt.Errorf("--database-url: %w", err)
	}
	name = strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return "", "", fmt.Errorf("--database-url %s: names no database", Redact(databaseURL))
	}
	u.Path = "/postgres"
	return u.String(), name, nil
}
