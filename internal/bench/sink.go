package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// postfixTool finds one of Postfix's test programs (smtp-sink,
// smtp-source) on PATH or in /usr/sbin, where Debian installs them.
func postfixTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join("/usr/sbin", name)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s is on neither PATH nor /usr/sbin: part c measures against Postfix's smtp-sink and smtp-source; "+
		"on Debian or Ubuntu `apt-get install postfix` installs them (the postfix daemon itself need not run)", name)
}

// sinkMarker is the line smtp-sink writes (-S) before each message it
// dumps, so that the dump can be split into messages.
const sinkMarker = "--nurture-bench-sink-message--\n"

// sinkBacklog is the listen backlog of smtp-sink, and its connection limit.
const sinkBacklog = 1024

// smtpSink is Postfix's smtp-sink as a child process, listening on a free
// loopback port and appending every message it receives to one dump file.
// Every run of part c gets a fresh one, started the same way, so that each
// run pays the same sink costs and has a dump of its own.
type smtpSink struct {
	cmd  *exec.Cmd
	addr string // 127.0.0.1:port
	dir  string // scratch directory of the dump
	dump string
	done chan struct{} // closed when the process has ended
	err  error         // what Wait returned, once done is closed
}

// startSink starts smtp-sink and waits until it answers.
func startSink(ctx context.Context, stderr io.Writer) (*smtpSink, error) {
	bin, err := postfixTool("smtp-sink")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "nurture-bench-sink-")
	if err != nil {
		return nil, err
	}
	var asUser []string
	if os.Geteuid() == 0 {
		// smtp-sink refuses to keep root's privileges: it switches to
		// -u's, which must be able to write the dump.
		u, err := sinkUser(dir)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		asUser = []string{"-u", u}
	}
	var errs []error
	for range 3 { // the free port may be taken before smtp-sink binds it
		s, err := launchSink(ctx, bin, dir, asUser, stderr)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
	}
	os.RemoveAll(dir)
	return nil, errors.Join(errs...)
}

// sinkUser makes dir writable by an unprivileged user and returns its name.
func sinkUser(dir string) (string, error) {
	for _, name := range []string{"nobody", "postfix"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", fmt.Errorf("give the smtp-sink dump directory to %s: %w", name, err)
		}
		return name, nil
	}
	return "", errors.New("smtp-sink needs an unprivileged user to run as when started by root: neither nobody nor postfix exists")
}

// launchSink starts smtp-sink on a free port and waits for its greeting.
func launchSink(ctx context.Context, bin, dir string, asUser []string, stderr io.Writer) (*smtpSink, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &smtpSink{addr: net.JoinHostPort("127.0.0.1", port), dir: dir, dump: filepath.Join(dir, "dump"), done: make(chan struct{})}
	args := append(append([]string(nil), asUser...), "-S", strings.ReplaceAll(sinkMarker, "\n", `\n`), "-D", s.dump,
		"-m", strconv.Itoa(sinkBacklog), s.addr, strconv.Itoa(sinkBacklog))
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stderr = indent{stderr}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	if err := s.waitReady(ctx); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s %s: %w", bin, strings.Join(args, " "), err)
	}
	return s, nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

// waitReady polls the sink until it greets, for at most ten seconds.
func (s *smtpSink) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			fmt.Fprint(c, "QUIT\r\n")
			c.Close()
			if rerr == nil && strings.HasPrefix(line, "220") {
				return nil
			}
			err = fmt.Errorf("greeted with %q: %v", line, rerr)
		}
		select {
		case <-s.done:
			return fmt.Errorf("ended before it listened: %v", s.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening after 10s: %w", err)
		}
	}
}

// url is the SMTP_URL of the sink.
func (s *smtpSink) url() string { return "smtp://" + s.addr + "?tls=none" }

// pid is the sink's process id.
func (s *smtpSink) pid() int { return s.cmd.Process.Pid }

// close ends the sink and deletes its dump.
func (s *smtpSink) close() {
	s.stop()
	os.RemoveAll(s.dir)
}

// stop ends the sink.
func (s *smtpSink) stop() {
	stopProcess(s.cmd.Process, s.done)
}

// dumpCounter counts the messages in a growing dump, reading only what
// was appended since its last count. It follows the dump while part c's
// worker runs, on the same cores: one buffer serves every read, and only
// the few bytes where a marker may straddle two reads are copied.
type dumpCounter struct {
	file   string
	offset int64
	buf    []byte // the bytes kept from the last read, then room for a read
	kept   int    // the end of the last read, where a marker may begin
	n      int
}

// dumpReadSize is how much of the dump a read takes at most.
const dumpReadSize = 1 << 20

// count returns the number of messages the sink has begun to dump.
func (c *dumpCounter) count() (int, error) {
	f, err := os.Open(c.file)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil // nothing received yet
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := f.Seek(c.offset, io.SeekStart); err != nil {
		return 0, err
	}
	pattern := []byte("\n" + sinkMarker)
	if c.buf == nil {
		c.buf = make([]byte, len(pattern)+dumpReadSize)
		c.buf[0], c.kept = '\n', 1 // the first marker opens the file
	}
	for {
		n, err := f.Read(c.buf[c.kept : c.kept+dumpReadSize])
		if n > 0 {
			data := c.buf[:c.kept+n]
			c.n += bytes.Count(data, pattern)
			c.offset += int64(n)
			// Keep less than a whole pattern, so no match counts twice.
			c.kept = copy(c.buf, data[max(len(data)-len(pattern)+1, 0):])
		}
		if err == io.EOF {
			return c.n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// dumpScan is what a dump holds.
type dumpScan struct {
	messages int
	// ids counts the messages by Message-ID ("" for none).
	ids map[string]int
	// bytes is the size of the messages as the client sent them (header
	// and body, CRLF line ends), without smtp-sink's own header lines.
	bytes int64
}

// scanDump reads a dump: smtp-sink's marker, its own header lines (the last
// is a Received: of three lines), then the message as received, then an
// empty line.
func scanDump(r io.Reader) (dumpScan, error) {
	d := dumpScan{ids: map[string]int{}}
	const (
		between    = iota // before the first marker
		sinkHeader        // smtp-sink's lines
		received          // the continuation lines of its Received:
		header            // the message's header
		body
	)
	state := between
	id, pending := "", 0 // pending: the previous message's line ends, the dump's empty line not yet known
	flush := func() {
		if state != between {
			d.messages++
			d.ids[id]++
		}
	}
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: count it, a piece at a time.
			d.bytes += int64(len(line))
			continue
		}
		if len(line) == 0 && err != nil {
			if err == io.EOF {
				flush()
				d.bytes -= int64(pending) // the dump's empty line after the last message
				return d, nil
			}
			return d, err
		}
		if string(line) == sinkMarker {
			flush()
			d.bytes -= int64(pending)
			state, id, pending = sinkHeader, "", 0
			continue
		}
		text := strings.TrimRight(string(line), "\r\n")
		switch state {
		case sinkHeader:
			if strings.HasPrefix(text, "Received:") {
				state = received
			}
			continue
		case received:
			if strings.HasPrefix(text, " ") || strings.HasPrefix(text, "\t") {
				continue
			}
			state = header
		}
		if state == between {
			continue
		}
		d.bytes += int64(len(text)) + 2
		pending = 0
		if text == "" {
			pending = 2
		}
		if state == header {
			if text == "" {
				state = body
			} else if k, v, ok := strings.Cut(text, ":"); ok && strings.EqualFold(k, "Message-ID") {
				id = strings.TrimSpace(v)
			}
		}
	}
}

// meanSize is the mean size of the messages, in bytes.
func (d dumpScan) meanSize() float64 {
	if d.messages == 0 {
		return 0
	}
	return float64(d.bytes) / float64(d.messages)
}

// scan reads the sink's dump.
func (s *smtpSink) scan() (dumpScan, error) {
	f, err := os.Open(s.dump)
	if errors.Is(err, os.ErrNotExist) {
		return dumpScan{ids: map[string]int{}}, nil
	}
	if err != nil {
		return dumpScan{}, err
	}
	defer f.Close()
	return scanDump(f)
}
