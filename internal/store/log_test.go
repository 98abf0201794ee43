package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

func readLog(t *testing.T, s *Store, run int64, id string, try int, after int64) (string, int64) {
	t.Helper()
	data, last, err := s.Log(context.Background(), run, id, try, after)
	if err != nil {
		t.Fatalf("Log: %v", err)
	}
	return string(data), last
}

// appendChunk appends one chunk to a try's log: what a TryLog's Close appends.
func appendChunk(t *testing.T, s *Store, run int64, id string, try int, chunk string) {
	t.Helper()
	w := s.TryLog(run, id, try)
	if _, err := io.WriteString(w, chunk); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func testLogTail(t *testing.T, be backend) {
	t.Parallel()
	s, _ := setup(t, be)
	r := mkRun(t, s, "r1", "a", "b")
	data, start := readLog(t, s, r.ID, "a", 1, 0)
	if data != "" || start != 0 {
		t.Fatalf("empty log = %q, %d; want nothing, 0", data, start)
	}
	for _, chunk := range []string{"one\n", "two\n", "", "three\n"} {
		appendChunk(t, s, r.ID, "a", 1, chunk)
	}
	data, last := readLog(t, s, r.ID, "a", 1, 0)
	if data != "one\ntwo\nthree\n" || last <= 0 {
		t.Fatalf("Log(after 0) = %q, %d; want the chunks in order", data, last)
	}
	if data, l := readLog(t, s, r.ID, "a", 1, last); data != "" || l != last {
		t.Errorf("Log(after last) with nothing new = %q, %d; want nothing, %d", data, l, last)
	}
	// Other tries and tasks have their own logs, which a tail does not see.
	appendChunk(t, s, r.ID, "a", 2, "retry\n")
	appendChunk(t, s, r.ID, "b", 1, "b\n")
	appendChunk(t, s, r.ID, "a", 1, "four\n")
	data, next := readLog(t, s, r.ID, "a", 1, last)
	if data != "four\n" || next <= last {
		t.Errorf("Log(after %d) = %q, %d; want only the new chunk and a later position", last, data, next)
	}
	if data, l := readLog(t, s, r.ID, "a", 1, next); data != "" || l != next {
		t.Errorf("Log(after %d) = %q, %d; want nothing new", next, data, l)
	}
	if data, _ := readLog(t, s, r.ID, "a", 1, 0); data != "one\ntwo\nthree\nfour\n" {
		t.Errorf("whole log of try 1 = %q", data)
	}
	if data, _ := readLog(t, s, r.ID, "a", 2, 0); data != "retry\n" {
		t.Errorf("log of try 2 = %q", data)
	}
	if data, _ := readLog(t, s, r.ID, "b", 1, 0); data != "b\n" {
		t.Errorf("log of b = %q", data)
	}
}

func testTryLog(t *testing.T, be backend) {
	t.Parallel()
	s, _ := setup(t, be)
	r := mkRun(t, s, "r1", "a", "b", "c", "d")

	t.Run("chunks in order, flushed by Close", func(t *testing.T) {
		t.Parallel()
		w := s.TryLog(r.ID, "a", 1)
		for _, p := range []string{"alpha\n", "beta", "\n", "gamma\n"} {
			if n, err := w.Write([]byte(p)); err != nil || n != len(p) {
				t.Fatalf("Write(%q) = %d, %v", p, n, err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		// Read at once: well before LogFlushInterval, so only Close can have flushed.
		if data, _ := readLog(t, s, r.ID, "a", 1, 0); data != "alpha\nbeta\ngamma\n" {
			t.Errorf("log after Close = %q", data)
		}
		if _, err := w.Write([]byte("late")); !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("Write after Close = %v, want io.ErrClosedPipe", err)
		}
		if err := w.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}
	})

	t.Run("a full chunk is appended by Write", func(t *testing.T) {
		t.Parallel()
		w := s.TryLog(r.ID, "b", 1)
		defer w.Close()
		big := bytes.Repeat([]byte("x"), 40<<10) // more than a 32 KiB chunk
		if _, err := w.Write(big); err != nil {
			t.Fatal(err)
		}
		if data, _ := readLog(t, s, r.ID, "b", 1, 0); len(data) != len(big) {
			t.Errorf("log after a %d-byte Write holds %d bytes; want it appended at once", len(big), len(data))
		}
	})

	t.Run("pending output is appended after LogFlushInterval", func(t *testing.T) {
		t.Parallel()
		w := s.TryLog(r.ID, "c", 1)
		defer w.Close()
		if _, err := w.Write([]byte("tick\n")); err != nil {
			t.Fatal(err)
		}
		// Follow the log as a reader would, bounded.
		deadline := time.After(10 * time.Second)
		poll := time.NewTicker(LogFlushInterval / 4)
		defer poll.Stop()
		for {
			if data, _ := readLog(t, s, r.ID, "c", 1, 0); data == "tick\n" {
				return
			}
			select {
			case <-poll.C:
			case <-deadline:
				t.Fatal("a pending write was not appended within 10s without Close")
			}
		}
	})

	t.Run("concurrent writers", func(t *testing.T) {
		t.Parallel()
		w := s.TryLog(r.ID, "d", 1)
		const writers, lines = 8, 300
		var wg sync.WaitGroup
		for g := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range lines {
					// Some long lines, so that chunk flushes happen during the writes.
					line := fmt.Sprintf("w%d %d %s\n", g, i, strings.Repeat("=", (i%7)*100))
					if _, err := w.Write([]byte(line)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		data, _ := readLog(t, s, r.ID, "d", 1, 0)
		if len(data) < 10*(32<<10) {
			t.Fatalf("log holds %d bytes; the writers should have crossed the 32 KiB chunk size many times", len(data))
		}
		next := make([]int, writers)
		n := 0
		for _, line := range strings.Split(strings.TrimSuffix(data, "\n"), "\n") {
			var g, i int
			if _, err := fmt.Sscanf(line, "w%d %d", &g, &i); err != nil || g < 0 || g >= writers {
				t.Fatalf("garbled line %q", line)
			}
			if i != next[g] {
				t.Fatalf("writer %d: line %d follows line %d", g, i, next[g]-1)
			}
			if want := strings.Repeat("=", (i%7)*100); !strings.HasSuffix(line, " "+want) {
				t.Fatalf("line %q was cut", line)
			}
			next[g]++
			n++
		}
		if n != writers*lines {
			t.Errorf("log has %d lines, want %d", n, writers*lines)
		}
	})
}

// TestLogPageBefore: a reader starts at the tail and pages back to the start,
// each page bounded, the pages together the whole log in order.
func testLogPageBefore(t *testing.T, be backend) {
	t.Parallel()
	ctx := context.Background()
	st, _ := setup(t, be)
	run := mkRun(t, st, "r1", "t")
	w := st.TryLog(run.ID, "t", 1)
	var want strings.Builder
	for i := range 5000 {
		line := fmt.Sprintf("line %05d\n", i)
		want.WriteString(line)
		if _, err := io.WriteString(w, line); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var pages []string
	before := int64(0)
	tailLast := int64(0)
	for {
		data, first, last, more, err := st.LogPageBefore(ctx, run.ID, "t", 1, before, 8<<10)
		if err != nil {
			t.Fatal(err)
		}
		if tailLast == 0 {
			tailLast = last
		}
		if len(data) > 8<<10+64<<10 {
			t.Fatalf("a page of %d bytes", len(data))
		}
		pages = append([]string{string(data)}, pages...)
		if !more {
			break
		}
		before = first
		if len(pages) > 1000 {
			t.Fatal("paging never ends")
		}
	}
	if got := strings.Join(pages, ""); got != want.String() {
		t.Errorf("pages joined: %d bytes, want %d (the whole log in order)", len(got), want.Len())
	}
	if !strings.HasSuffix(pages[len(pages)-1], "line 04999\n") {
		t.Errorf("the first page read is not the tail")
	}
	// Following the tail: nothing after its last chunk.
	if data, _, more, err := st.LogPage(ctx, run.ID, "t", 1, tailLast, 1<<20); err != nil || len(data) != 0 || more {
		t.Errorf("after the tail: %q, %v, %v", data, more, err)
	}
}
