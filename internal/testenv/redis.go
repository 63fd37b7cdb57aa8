// Package testenv gives tests isolated, real PostgreSQL databases and Redis
// databases. Set TEST_DATABASE_URL and TEST_REDIS_URL to point elsewhere than
// the local defaults.
package testenv

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisBaseURL is the Redis server tests use; its DB number is ignored.
func RedisBaseURL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Redis reserves one Redis database (1..13; the bench uses 14, the demo 15) for the test, flushes it, and
// releases it when the test ends. Reservations are keys in database 0, so
// test packages running in parallel never share a database.
func Redis(t testing.TB) *redis.Options {
	t.Helper()
	opts, err := redis.ParseURL(RedisBaseURL())
	if err != nil {
		t.Fatalf("TEST_REDIS_URL: %v", err)
	}
	ctx := context.Background()
	opts.DB = 0
	lock := redis.NewClient(opts)
	defer lock.Close()
	token := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
	deadline := time.Now().Add(2 * time.Minute)
	for {
		for db := 1; db <= 13; db++ {
			key := fmt.Sprintf("nurture-test:redis-db:%d", db)
			ok, err := lock.SetNX(ctx, key, token, 10*time.Minute).Result()
			if err != nil {
				t.Fatalf("reserve Redis database at %s: %v", opts.Addr, err)
			}
			if !ok {
				continue
			}
			o := *opts
			o.DB = db
			c := redis.NewClient(&o)
			if err := c.FlushDB(ctx).Err(); err != nil {
				t.Fatalf("flush Redis database %d: %v", db, err)
			}
			c.Close()
			t.Cleanup(func() {
				c := redis.NewClient(&o)
				defer c.Close()
				c.FlushDB(context.Background())
				l := redis.NewClient(opts)
				defer l.Close()
				if l.Get(context.Background(), key).Val() == token {
					l.Del(context.Background(), key)
				}
			})
			return &o
		}
		if time.Now().After(deadline) {
			t.Fatalf("no free Redis database (1..13) on %s", opts.Addr)
		}
		time.Sleep(50 * time.Millisecond) // other test packages hold all databases; wait for one
	}
}

// RedisURL is Redis(t) as a redis:// URL.
func RedisURL(t testing.TB) string {
	o := Redis(t)
	return fmt.Sprintf("redis://%s/%d", o.Addr, o.DB)
}
