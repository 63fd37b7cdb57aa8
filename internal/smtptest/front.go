package smtptest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Mode is how a Front treats new connections.
type Mode int

// Front modes.
const (
	Pass   Mode = iota // relay to the server behind
	Refuse             // nothing listens: connections are refused
	Hang               // accept and never say a word
	Drop               // accept and close at once, before the greeting
)

// Front is a TCP front for a Server that can refuse, hang or drop
// connections, as a server that is down, stuck or overloaded does. It
// keeps its address across modes.
type Front struct {
	t      testing.TB
	target string
	addr   string

	mu    sync.Mutex
	mode  Mode
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// StartFront starts a Front relaying to s, closed when the test ends.
func StartFront(t testing.TB, s *Server) *Front {
	t.Helper()
	f := &Front{t: t, target: s.Addr(), conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	f.serve(ln)
	t.Cleanup(f.close)
	return f
}

// URL is the SMTP URL of the front, plain SMTP.
func (f *Front) URL() string { return "smtp://" + f.addr + "?tls=none" }

// SetMode changes how new connections are treated, and closes the open
// ones so that pooled clients meet the new mode.
func (f *Front) SetMode(m Mode) {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		c.Close()
	}
	switch {
	case m == Refuse && f.ln != nil:
		f.ln.Close()
		f.ln = nil
	case m != Refuse && f.ln == nil:
		ln, err := net.Listen("tcp", f.addr)
		if err != nil {
			f.t.Fatalf("smtptest: listen again on %s: %v", f.addr, err)
		}
		f.mu.Unlock()
		f.serve(ln)
		f.mu.Lock()
	}
	f.mode = m
}

func (f *Front) serve(ln net.Listener) {
	f.mu.Lock()
	f.ln = ln
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			mode := f.mode
			f.conns[c] = struct{}{}
			f.mu.Unlock()
			switch mode {
			case Drop:
				f.forget(c)
			case Hang:
				// Left open until the mode changes or the client gives up.
			default:
				f.wg.Add(1)
				go func() {
					defer f.wg.Done()
					f.relay(c)
				}()
			}
		}
	}()
}

func (f *Front) relay(c net.Conn) {
	defer f.forget(c)
	up, err := net.Dial("tcp", f.target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); up.Close(); done <- struct{}{} }()
	go func() { io.Copy(c, up); c.Close(); done <- struct{}{} }()
	<-done
	<-done
}

func (f *Front) forget(c net.Conn) {
	c.Close()
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

func (f *Front) close() {
	f.mu.Lock()
	if f.ln != nil {
		f.ln.Close()
		f.ln = nil
	}
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}
