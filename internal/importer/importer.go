// Package importer reads customers and events as JSON Lines and writes
// them to the store. Files stream through in batches, never whole in
// memory; every bad line is reported with its line number.
package importer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"nurture/internal/store"
)

// MaxLineBytes is the longest line read; a longer line is a bad line.
const MaxLineBytes = 1 << 20

// MaxProblems is how many problems a Result keeps; Bad counts them all.
const MaxProblems = 1000

// Options tune an import.
type Options struct {
	// Strict rejects the whole file when any line is bad: nothing is
	// written, and every bad line is still reported.
	Strict bool
	// BatchSize is how many lines are written at a time. Default 5000.
	BatchSize int
	// Progress, when set, is called after each batch written with the
	// number of lines read so far, from a goroutine of the import's own.
	Progress func(lines int)
	// Now is the clock, read once per import, that event times are
	// checked against (default time.Now).
	Now func() time.Time
}

// MaxFuture is how far past the import's clock an event's occurred_at may
// lie, to allow for clock skew between systems; a later time is a bad line.
const MaxFuture = 24 * time.Hour

// Result says what an import did.
type Result struct {
	// Lines is how many lines were read, blank ones included.
	Lines int
	// Imported counts good lines that created or changed a row.
	Imported int
	// Unchanged counts good lines that changed nothing: a customer
	// identical to the stored one, an event imported before.
	Unchanged int
	// Bad counts bad lines. A non-strict import wrote the good lines
	// anyway; a strict one wrote nothing.
	Bad int
	// Problems are the first MaxProblems problems, in line order; a bad
	// line may have several.
	Problems []Problem
}

// Problem is one thing wrong with one line.
type Problem struct {
	File   string
	Line   int // 1-based
	Reason string
}

// String formats p as FILE:LINE: reason.
func (p Problem) String() string { return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Reason) }

// Customers imports customers from r, one JSON object per line, upserting
// them by id; name is the file name used in problems. A line is:
//
//	{"id":"c1","email":"a@x.com","first_name":"Ann","timezone":"Europe/Paris",
//	 "subscribed":true,"created_at":"2026-01-02T15:04:05Z","attributes":{"plan":"pro"}}
//
// id and email are required. timezone defaults to UTC and subscribed to
// true. Without created_at, a new customer is created now and an existing
// one keeps its date. The whole file is one transaction.
func Customers(ctx context.Context, st *store.Store, r io.Reader, name string, opts Options) (Result, error) {
	return run(ctx, st, r, name, opts, newCustomerParser().parse, (*store.Import).Customers)
}

// Events imports events from r, one JSON object per line; name is the file
// name used in problems. A line is:
//
//	{"id":"e1","customer_id":"c1","type":"purchase","occurred_at":"2026-03-01T10:00:00Z",
//	 "amount":42.5,"properties":{}}
//
// customer_id, type and occurred_at are required; occurred_at may be at
// most MaxFuture after the clock opts.Now. An event whose id was
// imported before is ignored; so is an event without id identical to one
// imported before. The whole file is one transaction.
func Events(ctx context.Context, st *store.Store, r io.Reader, name string, opts Options) (Result, error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	p := eventParser{latest: now().Add(MaxFuture)}
	return run(ctx, st, r, name, opts, p.parse, (*store.Import).Events)
}

// run reads lines, parses them and writes good records in batches. The
// batches are written by a goroutine of their own while the next one is
// parsed, so that parsing and PostgreSQL work side by side; one batch
// waits at most.
func run[T any](ctx context.Context, st *store.Store, r io.Reader, name string, opts Options,
	parse func(line []byte) (T, []reason),
	write func(*store.Import, context.Context, []T) (int, error),
) (Result, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 5000
	}
	var res Result
	im, err := st.BeginImport(ctx)
	if err != nil {
		return res, fmt.Errorf("import %s: %w", name, err)
	}
	defer im.Rollback(context.WithoutCancel(ctx))

	w := startWriter(ctx, im, name, opts, write)
	batch := w.batch()
	err = func() error {
		lr := newLineReader(r)
		for {
			line, tooLong, err := lr.next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", name, err)
			}
			res.Lines++
			if res.Lines == 1 {
				line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
			}
			var reasons []reason
			var rec T
			switch {
			case tooLong:
				reasons = []reason{{"", fmt.Sprintf("line longer than %d bytes", MaxLineBytes)}}
			case len(bytes.TrimSpace(line)) == 0:
				continue
			default:
				rec, reasons = parse(line)
			}
			if len(reasons) > 0 {
				res.Bad++
				for _, reason := range reasons {
					if len(res.Problems) < MaxProblems {
						res.Problems = append(res.Problems, Problem{File: name, Line: res.Lines, Reason: reason.text})
					}
				}
				continue
			}
			if opts.Strict && res.Bad > 0 {
				continue // nothing will be written; keep reading to report every bad line
			}
			batch = append(batch, rec)
			if len(batch) >= opts.BatchSize {
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("import %s: %w", name, err)
				}
				if !w.send(batch, res.Lines) {
					return nil // the writer failed: wait says why
				}
				batch = w.batch()
			}
		}
	}()
	if err == nil && !(opts.Strict && res.Bad > 0) {
		w.send(batch, res.Lines)
	}
	imported, unchanged, werr := w.wait()
	if err == nil {
		err = werr
	}
	if err != nil {
		return res, err
	}
	if opts.Strict && res.Bad > 0 {
		if err := im.Rollback(ctx); err != nil {
			return res, fmt.Errorf("import %s: %w", name, err)
		}
		return res, nil
	}
	if err := im.Commit(ctx); err != nil {
		return res, fmt.Errorf("import %s: %w", name, err)
	}
	res.Imported, res.Unchanged = imported, unchanged
	return res, nil
}

// writer writes batches of one import in a goroutine of its own.
type writer[T any] struct {
	batches chan pending[T]
	free    chan []T
	stop    chan struct{} // closed when the writer fails
	done    chan struct{}
	size    int

	// set by the goroutine, read after done
	imported, unchanged int
	err                 error
}

// pending is a batch and the number of lines read when it was full.
type pending[T any] struct {
	recs  []T
	lines int
}

func startWriter[T any](ctx context.Context, im *store.Import, name string, opts Options,
	write func(*store.Import, context.Context, []T) (int, error),
) *writer[T] {
	w := &writer[T]{batches: make(chan pending[T], 1), free: make(chan []T, 2), stop: make(chan struct{}),
		done: make(chan struct{}), size: opts.BatchSize}
	go func() {
		defer close(w.done)
		for b := range w.batches {
			if w.err != nil {
				continue
			}
			if len(b.recs) > 0 {
				n, err := write(im, ctx, b.recs)
				if err != nil {
					w.err = fmt.Errorf("import %s: line %d: %w", name, b.lines, err)
					close(w.stop)
					continue
				}
				w.imported += n
				w.unchanged += len(b.recs) - n
			}
			if opts.Progress != nil {
				opts.Progress(b.lines)
			}
			select {
			case w.free <- b.recs[:0]:
			default:
			}
		}
	}()
	return w
}

// batch returns an empty batch, reusing a written one when it can.
func (w *writer[T]) batch() []T {
	select {
	case b := <-w.free:
		return b
	default:
		return make([]T, 0, w.size)
	}
}

// send hands recs over to be written; false means the writer failed.
func (w *writer[T]) send(recs []T, lines int) bool {
	select {
	case w.batches <- pending[T]{recs, lines}:
		return true
	case <-w.stop:
		return false
	}
}

// wait ends the writer and says what it wrote.
func (w *writer[T]) wait() (imported, unchanged int, err error) {
	close(w.batches)
	<-w.done
	return w.imported, w.unchanged, w.err
}

// lineReader reads lines of at most MaxLineBytes, reporting longer ones
// without holding them in memory.
type lineReader struct {
	r   *bufio.Reader
	buf []byte
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line without its line ending. The line is valid
// until the next call. At the end of input it returns io.EOF.
func (lr *lineReader) next() (line []byte, tooLong bool, err error) {
	lr.buf = lr.buf[:0]
	read := false
	for {
		chunk, err := lr.r.ReadSlice('\n')
		read = read || len(chunk) > 0
		if !tooLong {
			if len(lr.buf)+len(bytes.TrimRight(chunk, "\r\n")) > MaxLineBytes {
				tooLong = true
				lr.buf = lr.buf[:0]
			} else {
				lr.buf = append(lr.buf, chunk...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if !read {
				return nil, false, io.EOF
			}
		case err != nil:
			return nil, false, err
		}
		return bytes.TrimRight(lr.buf, "\r\n"), tooLong, nil
	}
}
