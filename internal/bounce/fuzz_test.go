package bounce

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzParseMessage checks that no message makes the parser panic, and
// that what it returns holds together.
func FuzzParseMessage(f *testing.F) {
	for _, name := range []string{"dsn-postfix.eml", "dsn-exchange.eml", "bounces.mbox"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		for _, m := range splitMessages(b) {
			f.Add(m.Data)
		}
	}
	f.Add([]byte("Subject: unsubscribe-\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		at := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
		p, err := parseMessage(raw, at)
		if err != nil {
			return
		}
		for _, n := range p.notices {
			if n.Key == "" || n.Email == "" || (n.Kind != Hard && n.Kind != Soft) || n.OccurredAt.IsZero() {
				t.Fatalf("notice %+v", n)
			}
		}
		if p.token == "" && len(p.notices) == 0 && p.ignored == 0 {
			t.Fatalf("nothing parsed, and no error")
		}
	})
}

// FuzzSplitMessages checks that splitting keeps every message's lines.
func FuzzSplitMessages(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "bounces.mbox"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("From a\n\nFrom b\nx\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs := splitMessages(data)
		if len(msgs) == 0 && bytes.HasPrefix(data, []byte("From ")) {
			t.Fatalf("an mbox without messages")
		}
		for i, m := range msgs {
			if m.Index != i+1 || m.Line < 1 {
				t.Fatalf("message %d: %+v", i, m)
			}
		}
	})
}

func TestSplitMessages(t *testing.T) {
	msgs := splitMessages([]byte("From a@b Thu Jul  2 06:00:03 2026\nSubject: one\n\n>From here\n>>From there\nFrom the text\n\nFrom c@d Thu Jul  2 07:00:00 2026\nSubject: two\n\nbody\n"))
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2", len(msgs))
	}
	if got, want := string(msgs[0].Data), "Subject: one\n\nFrom here\n>From there\nFrom the text\n"; got != want || msgs[0].Line != 1 {
		t.Errorf("first message (line %d):\n%q\nwant\n%q", msgs[0].Line, got, want)
	}
	if got, want := string(msgs[1].Data), "Subject: two\n\nbody"; got != want || msgs[1].Line != 8 || msgs[1].Index != 2 {
		t.Errorf("second message (line %d):\n%q\nwant\n%q", msgs[1].Line, got, want)
	}
	// A line longer than the reader's buffer, and a message over the limit.
	long := "Subject: x\n\n" + strings.Repeat("y", 10000) + "\n"
	if got := splitMessages([]byte("From a\n" + long)); len(got) != 1 || string(got[0].Data) != strings.TrimSuffix(long, "\n") {
		t.Errorf("a long line was not kept whole")
	}
	var sizes []bool
	eachMessage(strings.NewReader("From a\n"+long+"\nFrom b\nSubject: z\n"), 1000, func(m rawMessage) error {
		sizes = append(sizes, m.TooLarge)
		return nil
	})
	if !reflect.DeepEqual(sizes, []bool{true, false}) {
		t.Errorf("over the limit: %v, want [true false]", sizes)
	}
	one := splitMessages([]byte("Subject: x\n\nFrom y\n"))
	if len(one) != 1 || string(one[0].Data) != "Subject: x\n\nFrom y\n" {
		t.Errorf("an .eml file: %+v", one)
	}
}
