package runner

import (
	"context"
	"fmt"
	"os/user"
	"strings"

	"github.com/trellisdag/trellis/internal/store"
)

// audit records a command-line action in the audit log the API writes too
// (actor "cli:<user>", role "cli"). A failure to record is a warning on
// stderr: the action itself has happened.
func (r *Runner) audit(ctx context.Context, st *store.Store, action, dagID, runID, taskID, detail string, err error) {
	e := store.AuditEntry{Actor: "cli:" + cliUser(r), Role: "cli", Action: action, DAGID: dagID, RunID: runID, TaskID: taskID,
		Detail: detail, Outcome: "ok"}
	if err != nil {
		e.Outcome = strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	if _, aerr := st.AddAudit(context.WithoutCancel(ctx), e); aerr != nil {
		fmt.Fprintf(r.cfg.Stderr, "warning: audit log: %v\n", aerr)
	}
}

// cliUser names who runs the command: $USER, else the account, else "unknown".
func cliUser(r *Runner) string {
	if u := r.cfg.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}
