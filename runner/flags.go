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

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/runs"
	"github.com/trellisdag/trellis/internal/store"
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

// newFlags declares the flags every command has: --db, whose default is
// $TRELLIS_DB (runner.Config.Getenv), else runner.Config.DB. Either may be a
// SQLite file or a PostgreSQL DSN (store.IsPostgres).
func newFlags(r *Runner, name string) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	def := r.cfg.Getenv("TRELLIS_DB")
	if def == "" {
		def = r.cfg.DB
	}
	return &flags{fs: fs, r: r, name: name, db: fs.String("db", def,
		"the database: a SQLite file, or a PostgreSQL DSN (postgres://user@host:5432/db?search_path=schema); default $TRELLIS_DB, which keeps a DSN's password out of the process list")}
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
			if fl.Name == "db" {
				d = store.Redact(d) // $TRELLIS_DB's password is not shown
			}
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

// mapIndexFlag is --map-index: a map index (0 or more) that may be unset.
type mapIndexFlag struct {
	n   int
	set bool
}

func (m *mapIndexFlag) String() string {
	if m == nil || !m.set {
		return ""
	}
	return strconv.Itoa(m.n)
}

func (m *mapIndexFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("want a map index, 0 or more")
	}
	m.n, m.set = n, true
	return nil
}

// index is the map index given, or -1 when the flag was not.
func (m *mapIndexFlag) index() int {
	if !m.set {
		return -1
	}
	return m.n
}

// mapIndexList is a repeatable --map-index.
type mapIndexList []int

func (l *mapIndexList) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, n := range *l {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func (l *mapIndexList) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("want a map index, 0 or more")
	}
	*l = append(*l, n)
	return nil
}

// addMaxMapLengthFlag declares --max-map-length (default Config.MaxMapLength);
// the returned function reads it after parsing, or returns a usage error
// naming the flag.
func addMaxMapLengthFlag(f *flags) func() (int, error) {
	n := f.fs.Int("max-map-length", f.r.cfg.MaxMapLength,
		"the longest list a task may be mapped over (Airflow's max_map_length): a longer one fails the task that maps over it or returned it (runner.Config.MaxMapLength)")
	return func() (int, error) {
		if *n <= 0 {
			return 0, usagef("%s: --max-map-length %d: must be positive", f.name, *n)
		}
		return *n, nil
	}
}

// taskArg is a task named on the command line, with the map index it names
// ("resize[3]", or --map-index 3) or -1.
type taskArg struct {
	base  string
	index int
	task  task.Task // nil for a task the DAG does not have (any more)
}

// id is the id of the task instance named.
func (a taskArg) id() string { return task.InstanceID(a.base, a.index) }

// parseTaskArg reads a task argument, which may name a mapped instance itself
// ("resize[3]"), and --map-index. Giving two different indexes, or an index
// for a task of the DAG that is not mapped, is a usage error naming the flag.
func parseTaskArg(cmd string, d *dag.DAG, arg string, mi *mapIndexFlag) (taskArg, error) {
	a := taskArg{base: arg, index: -1}
	if _, ok := d.Task(arg); !ok {
		if base, k := task.ParseInstanceID(arg); k >= 0 {
			a.base, a.index = base, k
		}
	}
	if mi != nil && mi.set {
		if a.index >= 0 && a.index != mi.n {
			return a, usagef("%s: --map-index %d: the task argument %q names map index %d; give one", cmd, mi.n, arg, a.index)
		}
		a.index = mi.n
	}
	if t, ok := d.Task(a.base); ok {
		a.task = t
		if a.index >= 0 && !task.SettingsOf(t).Mapped {
			return a, usagef("%s: --map-index %d: task %q of dag %q is not mapped", cmd, a.index, a.base, d.ID())
		}
	}
	return a, nil
}
