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

func TestLogTail(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	r := mkRun(t, s, "r1", "a", "b")
	if data, last := readLog(t, s, r.ID, "a", 1, 0); data != "" || last != 0 {
		t.Fatalf("empty log = %q, %d", data, last)
	}
	for _, chunk := range []string{"one\n", "two\n", "", "three\n"} {
		if err := s.AppendLog(ctx, r.ID, "a", 1, []byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	data, last := readLog(t, s, r.ID, "a", 1, 0)
	if data != "one\ntwo\nthree\n" || last != 3 {
		t.Fatalf("Log(after 0) = %q, %d; want the three chunks in order, last 3 (empty chunks are not stored)", data, last)
	}
	if data, l := readLog(t, s, r.ID, "a", 1, last); data != "" || l != last {
		t.Errorf("Log(after last) with nothing new = %q, %d; want nothing, %d", data, l, last)
	}
	if err := s.AppendLog(ctx, r.ID, "a", 1, []byte("four\n")); err != nil {
		t.Fatal(err)
	}
	if data, l := readLog(t, s, r.ID, "a", 1, last); data != "four\n" || l != last+1 {
		t.Errorf("Log(after %d) = %q, %d; want only the new chunk", last, data, l)
	}
	if data, _ := readLog(t, s, r.ID, "a", 1, 1); data != "two\nthree\nfour\n" {
		t.Errorf("Log(after 1) = %q", data)
	}
	// Other tries and tasks have their own logs.
	if err := s.AppendLog(ctx, r.ID, "a", 2, []byte("retry\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLog(ctx, r.ID, "b", 1, []byte("b\n")); err != nil {
		t.Fatal(err)
	}
	if data, last := readLog(t, s, r.ID, "a", 2, 0); data != "retry\n" || last != 1 {
		t.Errorf("log of try 2 = %q, %d", data, last)
	}
	if data, _ := readLog(t, s, r.ID, "b", 1, 0); data != "b\n" {
		t.Errorf("log of b = %q", data)
	}
}

func TestTryLog(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
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
		big := bytes.Repeat([]byte("x"), logChunk+10)
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
		data, last := readLog(t, s, r.ID, "d", 1, 0)
		if last < 2 {
			t.Errorf("the log was appended in %d chunk(s); want the 32 KiB threshold crossed", last)
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
