package web

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/task"
)

// TestLogTailPagesAndDownload: a big log is read from its tail, page by page
// backwards (each page bounded), the pages together being the whole log; the
// download streams it whole as a text attachment.
func TestLogTailPagesAndDownload(t *testing.T) {
	t.Parallel()
	const lines = 150000 // about 2.5 MiB: three pages of 1 MiB at most
	s := newStack(t, stackOpts{dags: func(s *stack) []*dag.DAG {
		d := dag.New("chatty", dag.DefaultRetries(0, 0))
		d.Add(task.Go("talk", func(ctx context.Context, r *task.Run) (int, error) {
			for i := range lines {
				fmt.Fprintf(r.Output(), "line %06d of the log\n", i)
			}
			return lines, nil
		}))
		return []*dag.DAG{d}
	}})
	run := s.trigger("chatty", "")
	s.waitRun("chatty", run.RunID, task.RunSuccess)
	base := runPath("chatty", run.RunID) + "/tasks/talk/tries/1/log"

	var tail LogChunk
	s.do("GET", base+"?tail=1", nil, &tail)
	if !strings.HasSuffix(tail.Content, fmt.Sprintf("line %06d of the log\n", lines-1)) || !tail.Earlier || !tail.Finished ||
		len(tail.Content) > 1<<20 || tail.Prev == 0 {
		t.Fatalf("tail: %d bytes, earlier %v, finished %v, prev %d", len(tail.Content), tail.Earlier, tail.Finished, tail.Prev)
	}
	pages := []string{tail.Content}
	for c := tail; c.Earlier; {
		var prev LogChunk
		s.do("GET", fmt.Sprintf("%s?before=%d", base, c.Prev), nil, &prev)
		if len(prev.Content) == 0 || len(prev.Content) > 1<<20 {
			t.Fatalf("a page of %d bytes", len(prev.Content))
		}
		pages = append([]string{prev.Content}, pages...)
		c = prev
		if len(pages) > 10 {
			t.Fatal("paging back never ends")
		}
	}
	whole := strings.Join(pages, "")
	if got := strings.Count(whole, "\n"); got != lines || !strings.HasPrefix(whole, "line 000000 of the log\n") {
		t.Errorf("pages back from the tail: %d lines, want %d from the first", got, lines)
	}
	var next LogChunk
	s.do("GET", fmt.Sprintf("%s?after=%d", base, tail.Next), nil, &next)
	if next.Content != "" || !next.Finished {
		t.Errorf("after the tail: %+v, want nothing more and finished", next)
	}
	s.expectError(s.do("GET", base+"?before=x", nil, nil), 400, CodeBadRequest, "before")

	res := s.do("GET", base+"/download", nil, nil)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/plain; charset=utf-8" ||
		!strings.Contains(res.Header.Get("Content-Disposition"), `attachment; filename="chatty__`) || string(body) != whole {
		t.Errorf("download: %d %s %q, %d bytes (want %d, the whole log)", res.StatusCode, res.Header.Get("Content-Type"),
			res.Header.Get("Content-Disposition"), len(body), len(whole))
	}
}
