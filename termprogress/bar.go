// Package termprogress draws a backup's or restore's progress on a
// terminal, and keeps log lines written meanwhile whole: the log
// (NewLogger) writes through a LogSink, which clears the bar for each line
// and draws it again below. It is a leaf: it knows bytes, not archives.
package termprogress

import (
	"io"
	"os"
	"sync"
	"time"

	"fmt"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
	"log/slog"
)

// Bar draws a backup's or restore's progress on a terminal: bytes
// done of the expected total, rate and time left. It implements
// archive.Progress. The bar is a passing view: it is cleared when the work
// ends, and the log's closing line says what was done.
type Bar struct {
	desc string
	out  io.Writer
	log  *LogSink

	mu    sync.Mutex // every use of bar, including log lines drawn over it
	bar   *progressbar.ProgressBar
	done  int64
	total int64
}

// New returns a bar titled desc that draws on out once its total is
// known; log lines written through log (which may be nil) are kept whole.
func New(desc string, out io.Writer, log *LogSink) *Bar {
	return &Bar{desc: desc, out: out, log: log}
}

// NewLogger returns the log writing to sink as text or json (format) at
// level (WALNUT_LOG_LEVEL's value: debug, info, warn or error; "" for
// info), or at warn when terse.
func NewLogger(sink *LogSink, format, level string, terse bool) (*slog.Logger, error) {
	l := slog.LevelInfo
	if level != "" {
		if err := l.UnmarshalText([]byte(level)); err != nil {
			return nil, fmt.Errorf("WALNUT_LOG_LEVEL=%q: want debug, info, warn or error", level)
		}
	}
	if terse {
		l = slog.LevelWarn
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(sink, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(sink, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// NewLogSink returns the log's writer onto w.
func NewLogSink(w io.Writer) *LogSink { return &LogSink{w: w} }

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Total starts the bar, or corrects its estimate.
func (b *Bar) Total(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total = max(n, 1)
	if b.bar == nil {
		b.bar = progressbar.NewOptions64(b.total,
			progressbar.OptionSetWriter(b.out),
			progressbar.OptionSetDescription(b.desc),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionUseIECUnits(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionSetRenderBlankState(true),
		)
		if b.log != nil {
			b.log.attach(b)
		}
		b.bar.Set64(b.done)
		return
	}
	b.bar.ChangeMax64(max(b.total, b.done+1))
}

// Add counts bytes done. The total is an estimate; the bar is kept short
// of full until Stop, since a bar that reaches its max stops drawing.
func (b *Bar) Add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	if b.bar == nil {
		return
	}
	if b.done >= b.bar.GetMax64() {
		b.bar.ChangeMax64(b.done + b.done/100 + 1)
	}
	b.bar.Add64(n)
}

// Done returns the bytes counted so far.
func (b *Bar) Done() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.done
}

// Stop clears the bar; log lines go straight to stderr again.
func (b *Bar) Stop() {
	if b == nil {
		return
	}
	if b.log != nil {
		b.log.detach(b)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != nil {
		b.bar.Clear()
		b.bar.Exit()
		b.bar = nil
	}
}

// drawOver writes a log line where the bar is and lets the next update
// draw the bar again below it.
func (b *Bar) drawOver(w io.Writer, p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != nil {
		b.bar.Clear()
	}
	n, err := w.Write(p)
	if b.bar != nil {
		b.bar.RenderBlank()
	}
	return n, err
}

// LogSink is the log's writer: stderr, or stderr with a bar on it.
type LogSink struct {
	w   io.Writer
	mu  sync.Mutex
	bar *Bar
}

func (s *LogSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	bar := s.bar
	s.mu.Unlock()
	if bar != nil {
		return bar.drawOver(s.w, p)
	}
	return s.w.Write(p)
}

func (s *LogSink) attach(b *Bar) {
	s.mu.Lock()
	s.bar = b
	s.mu.Unlock()
}

func (s *LogSink) detach(b *Bar) {
	s.mu.Lock()
	if s.bar == b {
		s.bar = nil
	}
	s.mu.Unlock()
}
