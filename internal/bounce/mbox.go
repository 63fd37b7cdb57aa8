package bounce

import (
	"bytes"
	"regexp"
)

// rawMessage is one message of a file, with where it starts.
type rawMessage struct {
	Index int // from 1
	Line  int // the line it starts on, from 1
	Data  []byte
}

// escapedFrom is a body line that mbox writers escaped with ">".
var escapedFrom = regexp.MustCompile(`^>+From `)

// splitMessages returns the messages of a file: an mbox (the file starts
// with a "From " line, and each message after the first starts with one
// after a blank line; ">From " lines lose one ">"), or one message.
func splitMessages(data []byte) []rawMessage {
	if !bytes.HasPrefix(data, []byte("From ")) {
		return []rawMessage{{Index: 1, Line: 1, Data: data}}
	}
	var (
		out   []rawMessage
		cur   *bytes.Buffer
		start int
		blank = true // before the first line
	)
	flush := func() {
		if cur != nil {
			b := cur.Bytes()
			// The blank line before the next "From " separates messages.
			b = bytes.TrimSuffix(b, []byte("\n"))
			b = bytes.TrimSuffix(b, []byte("\r"))
			out = append(out, rawMessage{Index: len(out) + 1, Line: start, Data: b})
		}
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	for i, line := range lines {
		if len(line) == 0 {
			continue
		}
		if blank && bytes.HasPrefix(line, []byte("From ")) {
			flush()
			cur, start = &bytes.Buffer{}, i+1
			blank = false
			continue // the separator line is not part of the message
		}
		if escapedFrom.Match(line) {
			line = line[1:]
		}
		cur.Write(line)
		blank = len(bytes.TrimRight(line, "\r\n")) == 0
	}
	flush()
	return out
}
