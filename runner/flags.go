package runner

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/trellisdag/trellis/internal/runs"
	"github.com/trellisdag/trellis/task"
)

// flags parses a command's flags and positional arguments in any order.
type flags struct {
	fs   *flag.FlagSet
	r    *Runner
	name string
	db   *string
}

// errHelp is returned by flags.parse after it printed a command's help: the
// command does nothing and the runner exits 0.
var errHelp = errors.New("help printed")

func newFlags(r *Runner, name string) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	def := r.cfg.Getenv("TRELLIS_DB")
	if def == "" {
		def = r.cfg.DB
	}
	return &flags{fs: fs, r: r, name: name, db: fs.String("db", def, "database path ($TRELLIS_DB)")}
}

// parse returns the positional arguments; it requires exactly want of them.
func (f *flags) parse(args []string, want ...string) ([]string, error) {
	var pos []string
	for {
		if err := f.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, f.help()
			}
			return nil, usagef("%s: %v", f.name, err)
		}
		args = f.fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != len(want) {
		if len(pos) < len(want) {
			return nil, usagef("%s: missing %s", f.name, strings.Join(want[len(pos):], " "))
		}
		return nil, usagef("%s: unexpected argument %q", f.name, pos[len(want)])
	}
	return pos, nil
}

// help prints the command's usage line, what it does and every flag with its
// default to standard output, and returns errHelp.
func (f *flags) help() error {
	w := f.r.cfg.Stdout
	for _, c := range f.r.commands() {
		if c.name == f.name {
			fmt.Fprintf(w, "usage: %s %s %s\n\n%s\n", progName(), c.name, c.args, c.short)
		}
	}
	fmt.Fprintf(w, "\nflags:\n")
	f.fs.VisitAll(func(fl *flag.Flag) {
		typ, usage := flag.UnquoteUsage(fl)
		line := "  --" + fl.Name
		if len(fl.Name) == 1 {
			line = "  -" + fl.Name
		}
		if typ != "" {
			line += " " + typ
		}
		if d := fl.DefValue; d != "" && d != "false" && d != "0" && !strings.Contains(usage, "(default") {
			if typ == "string" {
				d = strconv.Quote(d)
			}
			usage += " (default " + d + ")"
		}
		fmt.Fprintf(w, "%s\n    \t%s\n", line, usage)
	})
	return errHelp
}

// parseDateIn reads a date given on the command line. The one rule for every
// date flag: a value with an offset (2024-01-31T03:00:00Z, ...+01:00) is that
// instant; one without (2024-01-31, 2024-01-31T03:00) is read on the wall
// clock of loc, the DAG's timezone, as Airflow reads dates in the DAG's zone.
func parseDateIn(flagName, s string, loc *time.Location) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef("--%s %q: not a date (want 2024-01-31 or 2024-01-31T03:00:00Z; without an offset it is read in the DAG's timezone, %s)", flagName, s, loc)
}

// parseConf checks that s is a JSON object.
func parseConf(s string) (json.RawMessage, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, usagef("--conf: malformed JSON: %v", err)
	}
	if m == nil {
		return nil, usagef("--conf: want a JSON object, got %s", s)
	}
	return json.RawMessage(s), nil
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

func runID(prefix string, t time.Time) string { return runs.ID(task.RunType(prefix), t) }
