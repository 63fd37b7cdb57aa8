package mail

import (
	"bytes"
	"io"
	"time"
)

// WriteSigned writes m as the transports do, dated now and signed with dk
// unless it is nil, so benchmarks can time building and signing alone.
func WriteSigned(w io.Writer, m *Message, now time.Time, dk *DKIM) error {
	var buf bytes.Buffer
	r, err := m.render(&buf, now, dk, false, nil)
	if err != nil {
		return err
	}
	_, err = w.Write(r.bytes())
	return err
}

// WithQueue lets up to n sends wait in the SMTP pool's channel, where
// QueuedSends sees them, instead of in Send.
func WithQueue(cfg Config, n int) Config {
	cfg.queue = n
	return cfg
}

// QueuedSends is how many sends wait in an SMTP sender's channel.
func QueuedSends(s Sender) int { return len(s.(*pool).reqs) }
