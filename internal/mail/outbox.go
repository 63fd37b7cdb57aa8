package mail

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// outbox is the Sender used without SMTP_URL: each message becomes
// DIR/CAMPAIGN/CUSTOMER_ID-DELIVERY_ID.eml, a complete RFC 5322 message
// (see outboxPath). A file appears whole or
// not at all (temporary file, fsync, rename), and resending a delivery
// replaces its file.
type outbox struct {
	dir  string
	dkim *DKIM
	now  func() time.Time
	log  *slog.Logger
}

func newOutbox(_ context.Context, cfg Config, log *slog.Logger) (*outbox, error) {
	if err := os.MkdirAll(cfg.OutboxDir, 0o755); err != nil {
		return nil, fmt.Errorf("create outbox: %w", err)
	}
	return &outbox{dir: cfg.OutboxDir, dkim: cfg.DKIM, now: cfg.Now, log: log}, nil
}

// Send writes m. Its reply is "stored PATH" (see outboxPath). Message.ID
// must be a plain file name: letters, digits, '.', '_' and '-', not
// starting with '.'.
func (o *outbox) Send(ctx context.Context, m *Message) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("write outbox: %w", context.Cause(ctx))
	}
	if !validFileID(m.ID) {
		return "", permanent(fmt.Errorf("outbox: delivery id %q cannot be a file name", m.ID))
	}
	// Never 8bit: a file may be handed on to a server that does not take it.
	var buf bytes.Buffer
	r, err := m.render(&buf, o.now(), o.dkim, false, nil)
	if err != nil {
		return "", err
	}
	path := outboxPath(o.dir, m)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", temporary(err, "write outbox")
	}
	f, err := os.CreateTemp(dir, ".tmp-"+m.ID+"-*")
	if err != nil {
		return "", temporary(err, "write outbox")
	}
	tmp := f.Name()
	_, err = f.Write(r.bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", temporary(err, "write outbox")
	}
	o.log.Debug("message stored in outbox", "delivery_id", m.ID, "path", path)
	return "stored " + path, nil
}

func (o *outbox) Close() error { return nil }

// outboxPath is where the outbox writes m: DIR/CAMPAIGN/CUSTOMER_ID-ID.eml,
// so that one customer's email is easy to find. Without a campaign the
// file is in DIR itself; without a customer id it is named ID.eml. The
// campaign and customer id are arbitrary text, so each becomes a safe path
// part (see filePart); the delivery id, unique and checked by
// validFileID, keeps names apart.
func outboxPath(dir string, m *Message) string {
	name := m.ID + ".eml"
	if m.CustomerID != "" {
		name = filePart(m.CustomerID) + "-" + name
	}
	if m.Campaign != "" {
		dir = filepath.Join(dir, filePart(m.Campaign))
	}
	return filepath.Join(dir, name)
}

// OutboxGlob returns the shell pattern that matches the outbox files in dir
// of the emails of campaign to customerID, such as
// "outbox/winback/c42-*.eml".
func OutboxGlob(dir, campaign, customerID string) string {
	return outboxPath(dir, &Message{ID: "*", Campaign: campaign, CustomerID: customerID})
}

// maxFilePart bounds the length of a path part made from a campaign name or
// customer id, well below the file name limits of common file systems.
const maxFilePart = 64

// filePart makes s safe as one part of a file name: every byte other than
// an ASCII letter, digit, '.', '_', '-', '+' or '@' becomes '_' (so no '/',
// '\', control character or space), a leading '.' becomes '_' (so no "..",
// no hidden file), and it is cut to maxFilePart bytes.
func filePart(s string) string {
	b := []byte(s)
	if len(b) > maxFilePart {
		b = b[:maxFilePart]
	}
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-' || c == '+' || c == '@'
		if !ok || (i == 0 && c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

func validFileID(id string) bool {
	if id == "" || id[0] == '.' || len(id) > 200 {
		return false
	}
	return strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}) < 0
}

// checkOutbox creates dir and proves a file can be written in it.
func checkOutbox(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("outbox %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".check-*")
	if err != nil {
		return fmt.Errorf("outbox %s: not writable: %w", dir, err)
	}
	name := f.Name()
	_, err = f.WriteString("ok\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("outbox %s: %w", dir, err)
	}
	return nil
}
