package mail_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"nurture/internal/mail"
)

const smtpSink = "/usr/sbin/smtp-sink"

// startSink runs Postfix's smtp-sink, which accepts and discards every
// message, in a process of its own so that its CPU is not counted as the
// sender's. flags are extra smtp-sink options, such as -p (no PIPELINING)
// or -8 (no 8BITMIME). It returns an SMTP URL for it.
func startSink(b *testing.B, flags ...string) string {
	b.Helper()
	if _, err := os.Stat(smtpSink); err != nil {
		b.Skipf("no %s: install Postfix to run this benchmark", smtpSink)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	args := append(flags, "-u", "root", addr, "1024")
	cmd := exec.Command(smtpSink, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("start smtp-sink: %v", err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("smtp-sink does not listen on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "smtp://" + addr + "?tls=none"
}

// cpuTime returns the user and system CPU time this process has used.
func cpuTime(b *testing.B) (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// BenchmarkSend sends campaign emails of the usual size (benchMessage)
// through a pool of 8 connections to smtp-sink, from 16 goroutines, as a
// busy worker does. It reports messages per second and the CPU time this
// process spent per message, in user and kernel mode: the sink runs in
// another process, so that is the sender's cost alone.
//
//	default       the sink offers PIPELINING and 8BITMIME
//	no-pipelining the sink offers neither (smtp-sink -p -8)
//	dkim          as default, every message DKIM-signed (2048-bit RSA)
func BenchmarkSend(b *testing.B) {
	m := benchMessage(b)
	for _, tt := range []struct {
		name  string
		flags []string
		dkim  bool
	}{
		{"default", nil, false},
		{"no-pipelining", []string{"-p", "-8"}, false},
		{"dkim", nil, true},
	} {
		b.Run(tt.name, func(b *testing.B) {
			cfg := mail.Config{URL: startSink(b, tt.flags...), Conns: 8, MaxPerConn: 1 << 30}
			if tt.dkim {
				cfg.DKIM = loadDKIM(b)
			}
			s := newSender(b, cfg)
			// Connect every connection before timing.
			warm := make(chan error, 8)
			for range 8 {
				go func() {
					_, err := s.Send(context.Background(), m)
					warm <- err
				}()
			}
			for range 8 {
				if err := <-warm; err != nil {
					b.Fatal(err)
				}
			}
			b.SetParallelism(8) // 16 goroutines on 2 cores
			u0, s0 := cpuTime(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Send(context.Background(), m); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			u1, s1 := cpuTime(b)
			n := float64(b.N)
			b.ReportMetric(n/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64((u1-u0).Microseconds())/n, "user-µs/msg")
			b.ReportMetric(float64((s1-s0).Microseconds())/n, "sys-µs/msg")
		})
	}
}
