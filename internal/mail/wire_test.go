package mail

import (
	"io"
	"mime/quotedprintable"
	netmail "net/mail"
	"strings"
	"testing"
)

// FuzzQP checks that appendQP's output decodes back to its input, line
// breaks aside, with no line over 76 characters and no trailing white
// space.
func FuzzQP(f *testing.F) {
	for _, s := range []string{"", "a", "Hello Zoë", "trailing \n", "tab\t", "a=b", "\r\n\r", "lone\rcr",
		strings.Repeat("x", 75) + "\n" + strings.Repeat("y", 76) + " " + strings.Repeat("é", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := string(appendQP(nil, s))
		for line := range strings.SplitSeq(enc, "\r\n") {
			if len(line) > 76 {
				t.Fatalf("line of %d characters: %q", len(line), line)
			}
			if strings.HasSuffix(line, " ") || strings.HasSuffix(line, "\t") {
				t.Fatalf("trailing white space: %q", line)
			}
		}
		dec, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(enc)))
		if err != nil {
			t.Fatalf("decode %q: %v", enc, err)
		}
		breaks := strings.NewReplacer("\r\n", "\n", "\r", "\n")
		if got, want := breaks.Replace(string(dec)), breaks.Replace(s); got != want {
			t.Fatalf("%q encodes to %q, which decodes to %q", s, enc, got)
		}
	})
}

func TestDotStuffing(t *testing.T) {
	for in, want := range map[string]string{
		".\r\n":                    "..\r\n",
		"a\r\n.b\r\n..c\r\nd.\r\n": "a\r\n..b\r\n...c\r\nd.\r\n",
		"no dots\r\n":              "no dots\r\n",
	} {
		if got := string(appendDotStuffed(nil, []byte(in))); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// FuzzParseAddress checks the shortcut of parseAddress agrees with
// net/mail.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"ann@example.com", "a.b+c@x-y.org", ".a@b", "a..b@c", "a@", "@b", "a@b@c",
		"Ann <ann@example.com>", "a_b@c.", "\"a b\"@c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, gerr := parseAddress(s)
		want, werr := netmail.ParseAddress(s)
		if (gerr == nil) != (werr == nil) || gerr == nil && *got != *want {
			t.Fatalf("%q: %+v, %v; net/mail: %+v, %v", s, got, gerr, want, werr)
		}
	})
}
