package scratch_test

import (
	"testing"

	"nurture/internal/scratch"
)

func TestGuard(t *testing.T) {
	g := scratch.Guard{Word: "bench", Database: "the benchmark drops and re-creates its database",
		Redis: "the benchmark flushes its Redis DB", RedisHint: "redis://127.0.0.1:6379/14"}
	for _, tt := range []struct {
		db, redis, want string
	}{
		{"postgres://localhost/nurture_bench", "redis://127.0.0.1:6379/14", ""},
		{"postgres://localhost/nurture", "redis://127.0.0.1:6379/14",
			`--database-url: the benchmark drops and re-creates its database; "nurture" must have "bench" in its name`},
		{"postgres://localhost/nurture_bench", "redis://:secret@127.0.0.1:6379/0",
			`--redis-url redis://:xxxxx@127.0.0.1:6379/0: the benchmark flushes its Redis DB; use a DB other than 0, such as redis://127.0.0.1:6379/14`},
		{"postgres://localhost/nurture_bench", "http://x", `REDIS_URL "http://x": redis: invalid URL scheme: http`},
	} {
		err := g.Check(tt.db, tt.redis)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("Check(%q, %q) = %q, want %q", tt.db, tt.redis, got, tt.want)
		}
	}
}

func TestAdminURL(t *testing.T) {
	for _, tt := range []struct {
		url, admin, name, err string
	}{
		{"postgres://ann:secret@db:5433/nurture_demo?sslmode=disable", "postgres://ann:secret@db:5433/postgres?sslmode=disable", "nurture_demo", ""},
		{"postgres://localhost/my_demo", "postgres://localhost/postgres", "my_demo", ""},
		{"postgres://ann:secret@localhost", "", "", "--database-url postgres://ann:xxxxx@localhost: names no database"},
	} {
		admin, name, err := scratch.AdminURL(tt.url)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if admin != tt.admin || name != tt.name || got != tt.err {
			t.Errorf("AdminURL(%q) = %q, %q, %q; want %q, %q, %q", tt.url, admin, name, got, tt.admin, tt.name, tt.err)
		}
	}
}
