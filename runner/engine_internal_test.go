package runner

import (
	"strings"
	"testing"

	"github.com/trellisdag/trellis/executor"
)

// TestReportSink: reports that come before the scheduler exists are kept and
// handed over first, in order; later ones go straight through.
func TestReportSink(t *testing.T) {
	var k reportSink
	k.Report(executor.Report{Key: executor.Key{TaskID: "a"}, Status: executor.Started})
	k.Report(executor.Report{Key: executor.Key{TaskID: "a"}, Status: executor.Succeeded})
	var got []string
	k.to(func(r executor.Report) { got = append(got, r.TaskID+" "+r.Status.String()) })
	k.Report(executor.Report{Key: executor.Key{TaskID: "b"}, Status: executor.Failed})
	if got, want := strings.Join(got, "|"), "a started|a succeeded|b failed"; got != want {
		t.Errorf("reports = %q, want %q", got, want)
	}
}
