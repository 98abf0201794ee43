package store

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestLogCapKeepsHeadAndTail: a try that prints far more than the limit keeps
// the first half of the limit, a marker that says how much was dropped and
// how to keep more, and the last half: in the database as well as when read.
func testLogCapKeepsHeadAndTail(t *testing.T, be backend) {
	t.Parallel()
	const limit = 256 << 10
	for _, tc := range []struct {
		name   string
		writes func(stream string) []string
	}{
		{"many small writes", func(stream string) []string {
			var out []string
			for i := 0; i < len(stream); i += 1000 {
				out = append(out, stream[i:min(i+1000, len(stream))])
			}
			return out
		}},
		{"one huge write", func(stream string) []string { return []string{stream} }},
		{"head, then huge", func(stream string) []string { return []string{stream[:100], stream[100:]} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := Open(context.Background(), be.newDB(t), Options{Sync: SyncNormal, MaxLogBytes: limit})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			r := mkRun(t, s, "r1", "loud")
			var b strings.Builder
			for i := 0; b.Len() < 4<<20; i++ {
				fmt.Fprintf(&b, "line %07d\n", i)
			}
			stream := b.String()
			w := s.TryLog(r.ID, "loud", 1)
			for _, p := range tc.writes(stream) {
				if n, err := w.Write([]byte(p)); err != nil || n != len(p) {
					t.Fatalf("write: %d, %v", n, err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got, _ := readLog(t, s, r.ID, "loud", 1, 0)
			m := regexp.MustCompile(`\n\[trellis: (\d+) bytes of this log were dropped here: it is limited to 262144 bytes, the first and the last half kept \(store.Options.MaxLogBytes, runner.Config.MaxLogBytes; default 67108864\)\]\n`).FindStringSubmatchIndex(got)
			if m == nil {
				t.Fatalf("no marker in the %d bytes read: head %q", len(got), got[:min(200, len(got))])
			}
			head, tail := got[:m[0]], got[m[1]:]
			dropped, _ := strconv.Atoi(got[m[2]:m[3]])
			if head != stream[:limit/2] {
				t.Errorf("head: %d bytes, want the first %d of the stream", len(head), limit/2)
			}
			if !strings.HasSuffix(stream, tail) || len(tail) == 0 || len(tail) > limit/2 {
				t.Errorf("tail: %d bytes, want a suffix of the stream of at most %d", len(tail), limit/2)
			}
			if len(head)+dropped+len(tail) != len(stream) {
				t.Errorf("head %d + dropped %d + tail %d != %d written", len(head), dropped, len(tail), len(stream))
			}
			var stored int64
			if err := s.r.QueryRow(`SELECT sum(length(data)) FROM task_logs WHERE run = ? AND task_id = 'loud'`, r.ID).Scan(&stored); err != nil {
				t.Fatal(err)
			}
			if stored > limit+1024 {
				t.Errorf("%d bytes stored for a limit of %d", stored, limit)
			}
		})
	}
}

// TestLogPages: a big log is stored in rows of at most 32 KiB, whatever the
// writes, and read back in pages of at most MaxLogPage whose cursor resumes
// exactly where the previous page stopped.
func testLogPages(t *testing.T, be backend) {
	t.Parallel()
	s, _ := setup(t, be)
	r := mkRun(t, s, "r1", "big")
	var b strings.Builder
	for i := 0; b.Len() < 3<<20; i++ {
		fmt.Fprintf(&b, "line %07d\n", i)
	}
	w := s.TryLog(r.ID, "big", 1)
	if _, err := w.Write([]byte(b.String())); err != nil { // one 3 MiB write
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var biggest int
	if err := s.r.QueryRow(`SELECT max(length(data)) FROM task_logs WHERE run = ?`, r.ID).Scan(&biggest); err != nil {
		t.Fatal(err)
	}
	if biggest > logChunk {
		t.Errorf("a row of %d bytes, want at most %d", biggest, logChunk)
	}
	var got strings.Builder
	pages := 0
	for after, more := int64(0), true; more; pages++ {
		var data []byte
		var err error
		data, after, more, err = s.LogPage(context.Background(), r.ID, "big", 1, after, MaxLogPage)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 || len(data) > MaxLogPage {
			t.Fatalf("page %d: %d bytes", pages, len(data))
		}
		got.Write(data)
	}
	if got.String() != b.String() || pages < 3 {
		t.Errorf("%d pages, %d bytes read of %d written", pages, got.Len(), b.Len())
	}
}
