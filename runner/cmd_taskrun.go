package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/k8s"
	"github.com/trellisdag/trellis/k8s/termination"
	"github.com/trellisdag/trellis/task"
)

// exitProcess ends a worker with the task's exit code (a Bash task's status).
var exitProcess = os.Exit

// cmdTaskRun is the entrypoint of a worker pod: it runs exactly one try of one
// task of this binary, with the context the runner put in the pod, prints the
// task's output to stdout (the pod's log) and reports the end through the
// termination message (and, for a result over 4 KB, a frame on stdout).
func cmdTaskRun(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "task-run")
	dagID := f.fs.String("dag", "", "DAG id")
	runFlag := f.fs.String("run", "", "run id")
	taskID := f.fs.String("task", "", "task id")
	mapIndex := f.fs.Int("map-index", -1, "map index of a mapped task instance (-1: the task is not mapped)")
	try := f.fs.Int("try", 0, "try number")
	ctxFile := f.fs.String("context", k8s.ContextFile, "the try's context (JSON)")
	termFile := f.fs.String("termination-log", k8s.TerminationLog, "where the end is reported")
	resultFile := f.fs.String("result-file", "", "report the end here, whole, as JSON, instead of the termination log (an isolated try of the local executor)")
	if _, err := f.parse(args); err != nil {
		return err
	}
	raw, err := os.ReadFile(*ctxFile)
	if err != nil {
		return usagef("task-run: %v", err)
	}
	var tc k8s.TryContext
	if err := json.Unmarshal(raw, &tc); err != nil {
		return usagef("task-run: context %s: %v", *ctxFile, err)
	}
	if tc.DAGID != *dagID || tc.RunID != *runFlag || tc.TaskID != *taskID || tc.Try != *try {
		return usagef("task-run: the context is for %s/%s/%s#%d, the arguments for %s/%s/%s#%d",
			tc.DAGID, tc.RunID, tc.InstanceID(), tc.Try, *dagID, *runFlag, task.InstanceID(*taskID, *mapIndex), *try)
	}
	d, err := r.dag(tc.DAGID)
	if err != nil {
		return err
	}
	t, ok := d.Task(tc.TaskID)
	if !ok {
		return usagef("dag %q has no task %q", tc.DAGID, tc.TaskID)
	}
	// A mapped task instance's try runs with its map index and element;
	// for a task that is not mapped the index is -1 whatever was passed.
	if _, mapped := task.MappingOf(t); mapped {
		if *mapIndex < 0 || tc.Index() != *mapIndex {
			return usagef("task-run: task %q is mapped: the context is for map index %d, the arguments for %d (--map-index)",
				tc.TaskID, tc.Index(), *mapIndex)
		}
		if tc.Item == nil {
			return usagef("task-run: the context of %s has no element to run for", tc.InstanceID())
		}
	} else {
		tc.MapIndex, tc.Item = nil, nil
	}
	params, err := d.ResolveConf(tc.Conf)
	if err != nil {
		params = map[string]any{}
	}
	out := r.cfg.Stdout
	run := task.NewRun(t, tc.Info(d.Location()), params, tc.Conf, tc.TaskInputs(), out)
	tctx := ctx
	if tc.Timeout > 0 {
		var cancel context.CancelFunc
		tctx, cancel = context.WithTimeoutCause(ctx, tc.Timeout, fmt.Errorf("execution timeout of %s exceeded", tc.Timeout))
		defer cancel()
	}
	result, err := executor.RunTry(tctx, t, run, out)
	o := executor.Classify(tctx, result, err) // the local executor's rule
	msg := termination.Message{Status: termination.Succeeded}
	code := 0
	switch o.Status {
	case executor.Succeeded:
		msg.Result = o.Result
	case executor.Skipped:
		msg.Status, msg.Error = termination.Skipped, o.Error
	case executor.Deferred: // sensors poke in the runner; never here
		msg.Status, msg.Error, msg.NoRetry, code = termination.Failed, "a sensor's poke cannot run in a pod", true, 1
	default:
		msg.Status, msg.Error, msg.NoRetry, code = termination.Failed, o.Error, o.NoRetry, 1
		// The process exits with the task's own code when it has one.
		if o.ExitCode != nil && *o.ExitCode > 0 && *o.ExitCode < 256 {
			code = *o.ExitCode
		}
		fmt.Fprintf(out, "task failed: %v\n", o.Err)
	}
	msg.ExitCode = code
	if *resultFile != "" {
		b, err := json.Marshal(msg)
		if err != nil {
			return fmt.Errorf("task-run: the end: %w", err)
		}
		// Whole or not at all: a crash mid-write must not look like an end.
		if err := os.WriteFile(*resultFile+".tmp", b, 0o600); err != nil {
			return fmt.Errorf("task-run: write the end: %w", err)
		}
		if err := os.Rename(*resultFile+".tmp", *resultFile); err != nil {
			return fmt.Errorf("task-run: write the end: %w", err)
		}
		if code != 0 {
			exitProcess(code)
		}
		return nil
	}
	body, frame := msg.Encode()
	if frame != nil {
		if _, err := out.Write(frame); err != nil {
			return fmt.Errorf("task-run: write the result frame: %w", err)
		}
	}
	if err := os.WriteFile(*termFile, body, 0o644); err != nil {
		return fmt.Errorf("task-run: write the termination message: %w", err)
	}
	if code != 0 {
		exitProcess(code)
	}
	return nil
}
