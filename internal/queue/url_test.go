package queue_test

import (
	"crypto/tls"
	"testing"
	"time"

	"nurture/internal/queue"
)

func TestConnOptCarriesTLSAndCredentials(t *testing.T) {
	o, err := queue.RedisOptions("rediss://user:secret@redis.example.com:6380/3")
	if err != nil {
		t.Fatal(err)
	}
	c := queue.ConnOpt(o)
	if c.TLSConfig == nil {
		t.Fatal("no TLS config for a rediss:// URL")
	}
	if c.TLSConfig != o.TLSConfig || c.TLSConfig.ServerName != "redis.example.com" || c.TLSConfig.MinVersion != tls.VersionTLS12 {
		t.Errorf("TLS config %+v, want the parsed one (server name redis.example.com, TLS 1.2+)", c.TLSConfig)
	}
	if c.Addr != "redis.example.com:6380" || c.Username != "user" || c.Password != "secret" || c.DB != 3 || c.DialTimeout != 3*time.Second {
		t.Errorf("got addr %q user %q password %q db %d dial timeout %s", c.Addr, c.Username, c.Password, c.DB, c.DialTimeout)
	}
}

func TestConnOptPlainURLHasNoTLS(t *testing.T) {
	o, err := queue.RedisOptions("redis://127.0.0.1:6379/2")
	if err != nil {
		t.Fatal(err)
	}
	if c := queue.ConnOpt(o); c.TLSConfig != nil || c.Addr != "127.0.0.1:6379" || c.DB != 2 {
		t.Errorf("got %+v", c)
	}
}
