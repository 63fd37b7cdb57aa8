package mail

import (
	"io"
	"time"
)

// WriteSigned writes m as the transports do, dated now and signed with dk
// unless it is nil, so benchmarks can time building and signing alone.
func WriteSigned(w io.Writer, m *Message, now time.Time, dk *DKIM) error {
	msg, _, err := m.build(now, dk)
	if err != nil {
		return err
	}
	_, err = msg.WriteTo(w)
	return err
}
