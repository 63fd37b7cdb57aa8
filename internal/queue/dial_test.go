package queue_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"nurture/internal/queue"
	"nurture/internal/testenv"
)

func TestDialSaysWhatToDo(t *testing.T) {
	// A port nobody listens on: take a free one and give it back.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	// A server that accepts connections and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	wrongPassword := *testenv.Redis(t)
	wrongPassword.Username, wrongPassword.Password = "nurture-no-such-user", "wrong"

	for _, tt := range []struct {
		name string
		o    *redis.Options
		want string
	}{
		{"refused", &redis.Options{Addr: closed, DB: 2},
			"connect to Redis at " + closed + ` (db 2): connection refused. Is Redis running? Start it with "make services", or set REDIS_URL to a server that is.`},
		{"silent", &redis.Options{Addr: silent.Addr().String(), ReadTimeout: time.Minute},
			"connect to Redis at " + silent.Addr().String() + ` (db 0): no answer within 300ms. Is Redis running? Start it with "make services", or set REDIS_URL to a server that is.`},
		{"wrong password", &wrongPassword,
			"connect to Redis at " + wrongPassword.Addr + fmt.Sprintf(" (db %d)", wrongPassword.DB) + ": WRONGPASS invalid username-password pair or user is disabled. Check the user and password in REDIS_URL."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rdb, err := queue.Dial(context.Background(), tt.o, 300*time.Millisecond)
			if err == nil {
				rdb.Close()
				t.Fatal("Dial succeeded")
			}
			if err.Error() != tt.want {
				t.Errorf("Dial error:\n got %s\nwant %s", err, tt.want)
			}
		})
	}
}
