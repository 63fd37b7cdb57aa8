package bounce

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"regexp"
)

// rawMessage is one message of a file, with where it starts.
type rawMessage struct {
	Index int // from 1
	Line  int // the line it starts on, from 1
	Data  []byte
	// TooLarge is set, and Data empty, for a message over the size limit.
	TooLarge bool
}

// maxMessageBytes bounds one message read from a file.
const maxMessageBytes = 64 << 20

// escapedFrom is a body line that mbox writers escaped with ">".
var escapedFrom = regexp.MustCompile(`^>+From `)

// eachMessage calls fn with each message of r, one at a time: an mbox
// (the file starts with a "From " line, and each message after the first
// starts with one after a blank line; ">From " lines lose one ">"), or one
// message. Only one message is held in memory at a time; one over limit
// bytes is passed with TooLarge instead of its data.
func eachMessage(r io.Reader, limit int, fn func(rawMessage) error) error {
	br := bufio.NewReader(r)
	first, err := br.Peek(5)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	mbox := bytes.Equal(first, []byte("From "))
	var (
		cur      bytes.Buffer
		index    int
		start    = 1
		tooLarge bool
		started  = !mbox // an .eml file is one message from its first line
		blank    = true  // the line before was blank (or there was none)
	)
	if started {
		index = 1
	}
	flush := func() error {
		if !started {
			return nil
		}
		b := cur.Bytes()
		if mbox {
			// The blank line before the next "From " separates messages.
			b = bytes.TrimSuffix(b, []byte("\n"))
			b = bytes.TrimSuffix(b, []byte("\r"))
		}
		m := rawMessage{Index: index, Line: start, Data: b, TooLarge: tooLarge}
		if tooLarge {
			m.Data = nil
		}
		err := fn(m)
		cur.Reset()
		tooLarge = false
		return err
	}
	for line := 1; ; line++ {
		text, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long line: take it in pieces, each copied before the next
			// read reuses the buffer.
			long := bytes.Clone(text)
			for errors.Is(err, bufio.ErrBufferFull) {
				text, err = br.ReadSlice('\n')
				long = append(long, text...)
			}
			text = long
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if len(text) > 0 {
			if mbox && blank && bytes.HasPrefix(text, []byte("From ")) {
				if err := flush(); err != nil {
					return err
				}
				index, start, started, blank = index+1, line, true, false
				continue // the separator line is not part of the message
			}
			if mbox && escapedFrom.Match(text) {
				text = text[1:]
			}
			if cur.Len()+len(text) > limit {
				tooLarge = true
			}
			if !tooLarge {
				cur.Write(text)
			}
			blank = len(bytes.TrimRight(text, "\r\n")) == 0
		}
		if errors.Is(err, io.EOF) {
			return flush()
		}
	}
}

// splitMessages returns every message of data, as eachMessage reads them.
func splitMessages(data []byte) []rawMessage {
	var out []rawMessage
	eachMessage(bytes.NewReader(data), maxMessageBytes, func(m rawMessage) error {
		m.Data = bytes.Clone(m.Data)
		out = append(out, m)
		return nil
	})
	return out
}
