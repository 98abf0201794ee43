package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/task"
)

// Version is the trellis version printed by the version command.
var Version = "0.1.0-dev"

// Config configures a Runner. The zero value is a sane default.
type Config struct {
	// DB is the default database path when neither --db nor TRELLIS_DB is given
	// (default "trellis.db").
	DB string
	// Parallelism is the default of --parallelism: tries in flight at once (default 32).
	Parallelism int
	// Pools sets the slots of named pools (a pool not listed has 128).
	Pools map[string]int
	// MaxResultSize is the largest result, in bytes, a try may return unless
	// its task sets task.MaxResultSize (default scheduler.DefaultMaxResultSize,
	// 8 MiB); a larger one fails the try.
	MaxResultSize int64
	// MaxMapLength is the longest list a task may be mapped over (Airflow's
	// max_map_length; default task.DefaultMaxMapLength, 1024): a longer one
	// fails the task that maps over it, or that returned it [serve
	// --max-map-length, dags test --max-map-length].
	MaxMapLength int
	// MaxLogBytes bounds the log kept of one try (default
	// store.DefaultMaxLogBytes, 64 MiB; negative: unbounded): past it the first
	// and the last half are kept, with a line that says how much was dropped.
	MaxLogBytes int64
	// PauseNewDAGs makes a DAG that the database has never seen start paused,
	// as Airflow's dags_are_paused_at_creation does: nothing is scheduled until
	// dags unpause (a DAG with an old start date and catchup would otherwise
	// create every missed run at once) [serve --pause-new-dags,
	// $TRELLIS_PAUSE_NEW_DAGS].
	PauseNewDAGs bool
	// AbandonAfter is how long a Go task stopped by its timeout, a kill or
	// shutdown may go on before its try is failed anyway and its slot freed
	// (default local.DefaultAbandonAfter, 10s); see local.Config.AbandonAfter.
	AbandonAfter time.Duration
	// IsolateGoTasks runs every Go task's tries in a child process of this
	// binary (its task-run entrypoint) instead of a goroutine, as
	// task.Isolated does for one task: a panic anywhere, os.Exit, a segfault or
	// an OOM kill fails only that try [$TRELLIS_ISOLATE=true].
	IsolateGoTasks bool
	// Sync is the durability of the store's commits: SyncFull (the default,
	// also the zero value) survives a crash of the machine; SyncNormal
	// survives a crash of the process (kill -9) and commits faster.
	// TRELLIS_SYNC=normal|full overrides it.
	Sync Sync
	// BaseURL is the web UI's address as its users reach it (e.g.
	// https://trellis.example.com/): callback events (task.Event.URL) link to
	// their try or run there [$TRELLIS_BASE_URL].
	BaseURL string
	// CallbackTimeout bounds one call of a callback (default
	// outbox.DefaultTimeout, 30 s); CallbackAttempts is how many times a
	// failed call is tried (default outbox.DefaultMaxAttempts, 5).
	CallbackTimeout  time.Duration
	CallbackAttempts int
	// Kubernetes configures the kubernetes executor and PodOperator pods.
	Kubernetes KubernetesConfig
	// Stdout and Stderr default to the process's.
	Stdout, Stderr io.Writer
	// Getenv reads the environment (default os.Getenv).
	Getenv func(string) string
}

// Sync is the durability of the store's commits.
type Sync string

// Durabilities.
const (
	// SyncFull fsyncs every commit: a committed change survives a crash of
	// the machine. The default ("" means SyncFull).
	SyncFull Sync = "full"
	// SyncNormal fsyncs at checkpoints only: a committed change survives a
	// crash of the process (kill -9), not of the machine; commits are faster.
	SyncNormal Sync = "normal"
)

// storeSync is the store's setting for s.
func (s Sync) storeSync() (store.Sync, error) {
	switch s {
	case "", SyncFull:
		return store.SyncFull, nil
	case SyncNormal:
		return store.SyncNormal, nil
	}
	return 0, fmt.Errorf("runner.Config.Sync %q: want %q or %q ($TRELLIS_SYNC)", s, SyncFull, SyncNormal)
}

// Runner is the command-line program of a team's binary: its DAGs plus the CLI,
// the scheduler and the executors.
type Runner struct {
	cfg  Config
	dags []*dag.DAG
}

// New returns a runner for the given DAGs.
func New(cfg Config, dags ...*dag.DAG) *Runner {
	if cfg.DB == "" {
		cfg.DB = "trellis.db"
	}
	if cfg.Parallelism <= 0 {
		cfg.Parallelism = 32
	}
	if cfg.MaxMapLength <= 0 {
		cfg.MaxMapLength = task.DefaultMaxMapLength
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	switch v := Sync(cfg.Getenv("TRELLIS_SYNC")); v {
	case SyncNormal, SyncFull:
		cfg.Sync = v
	}
	return &Runner{cfg: cfg, dags: dags}
}

// Main runs the command line of a team's binary with the given DAGs and exits:
//
//	func main() { runner.Main(etl, reports) }
func Main(dags ...*dag.DAG) { New(Config{}, dags...).Main() }

// Main runs the command in os.Args and exits with its status. SIGINT and SIGTERM
// cancel the command.
func (r *Runner) Main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := r.Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	ExitOK      = 0 // the command did what it was asked
	ExitFailure = 1 // it ran, and what it ran failed (a failed run), or the runtime failed
	ExitUsage   = 2 // bad input: nothing was done or written
)

// UsageError is bad input: an unknown DAG, task or run, a malformed flag, an invalid
// DAG. The command exits with ExitUsage having written nothing.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, args ...any) error {
	return &UsageError{fmt.Errorf(format, args...)}
}

// ErrRunFailed is returned by commands whose run ended failed.
var ErrRunFailed = errors.New("run failed")

type command struct {
	name  string // "dags test"
	args  string // "<dag> [--logical-date D] [--conf JSON]"
	short string
	run   func(ctx context.Context, r *Runner, args []string) error
}

func (r *Runner) commands() []command {
	return []command{
		{"dags list", "", "list the DAGs with their schedule and latest run", cmdDagsList},
		{"dags show", "<dag>", "print a DAG's tasks, edges and schedule", cmdDagsShow},
		{"dags params", "<dag> [--json]", "print the params a run's conf may set: type, default, allowed values, description (--json: as a JSON Schema)", cmdDagsParams},
		{"dags test", "<dag> [--logical-date D] [--conf JSON] [--max-map-length N]", "run one complete DAG run now, in this process, with live progress", cmdDagsTest},
		{"dags trigger", "<dag> [--conf JSON] [--wait]", "create a manual run for the scheduler (with --wait, wait for its end)", cmdDagsTrigger},
		{"dags next", "<dag> [--count N] [--now D]", "print the upcoming scheduled runs in the DAG's timezone", cmdDagsNext},
		{"dags backfill", "<dag> --from D --to D [--reprocess-failed] [--max-active-runs N] [--dry-run]", "run every interval of a date range", cmdDagsBackfill},
		{"dags pause", "<dag>", "stop creating and starting runs of a DAG", cmdDagsPause},
		{"dags unpause", "<dag>", "resume a paused DAG (catchup decides what is created)", cmdDagsUnpause},
		{"tasks test", "<dag> <task> [--map-index N] [--item JSON] [--run R] [--logical-date D] [--conf JSON]", "run one task once in this process; nothing is recorded", cmdTasksTest},
		{"tasks clear", "<dag> <run|latest> [--task T]... [--map-index N]... [--downstream] [--failed-only]", "reset finished tasks of a run so that they run again (with their setups and teardowns, as Airflow)", cmdTasksClear},
		{"tasks mark", "<dag> <run> <task> --state success|failed [--note TEXT]", "set a task instance's state by hand (Airflow's mark success/failed)", cmdTasksMark},
		{"pools list", "", "the pools (runner.Config.Pools and default_pool) with their slots, the slots in use (pool_slots of the tries in flight) and the tasks that use them", cmdPoolsList},
		{"pools set", "<pool> <slots>", "resize a declared pool at run time, without a rebuild (a running scheduler picks it up)", cmdPoolsSet},
		{"assets list", "", "the assets (Airflow's datasets) with the tasks that update them, the DAGs scheduled on them and their events", cmdAssetsList},
		{"assets events", "[uri] [--limit N]", "the latest asset events, newest first", cmdAssetsEvents},
		{"assets post", "<uri> [--extra JSON]", "record an asset event by hand; DAGs scheduled on the asset run", cmdAssetsPost},
		{"runs list", "<dag> [--state S] [--limit N]", "list a DAG's runs, newest first", cmdRunsList},
		{"runs show", "<dag> <run|latest> [--max-instances N]", "print a run's task instances (a mapped task: its summary, counts per state and instances)", cmdRunsShow},
		{"runs delete", "<dag> <run|latest>", "delete a finished run with its task instances, tries, logs and results", cmdRunsDelete},
		{"db clean", "--before D [--dag D] [--dry-run]", "delete finished runs older than a date (the newest of each DAG is kept)", cmdDBClean},
		{"logs", "<dag> <run|latest> <task> [--map-index N] [--try N]", "print a try's log (default: the latest try)", cmdLogs},
		{"serve", "[--parallelism N] [--until-idle] [--max-map-length N]", "run the scheduler: execute triggered runs until stopped", cmdServe},
		{"manifests", "--image IMAGE [--namespace NS] [--name NAME] [--dockerfile]", "print Kubernetes YAML (or a Dockerfile) to deploy this binary", cmdManifests},
		{"render", "<dag> [task] [--map-index N] [--item JSON] [--logical-date D] [-o yaml|json]", "print the pod each task would run in, without a cluster", cmdRender},
		{"task-run", "--dag D --run R --task T --try N", "run one try inside a worker pod (used by the kubernetes executor)", cmdTaskRun},
		{"version", "", "print the version", cmdVersion},
	}
}

// Run runs one command line (without the program name) and returns the exit status.
func (r *Runner) Run(ctx context.Context, args []string) int {
	err := r.run(ctx, args)
	if err == nil || errors.Is(err, errHelp) {
		return ExitOK
	}
	fmt.Fprintf(r.cfg.Stderr, "error: %s\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	var ue *UsageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	return ExitFailure
}

func (r *Runner) run(ctx context.Context, args []string) error {
	// --db may also come before the command: move it behind.
	var global []string
	for len(args) > 0 && (args[0] == "--db" || args[0] == "-db" || strings.HasPrefix(args[0], "--db=") || strings.HasPrefix(args[0], "-db=")) {
		n := 1
		if !strings.Contains(args[0], "=") && len(args) > 1 {
			n = 2
		}
		global, args = append(global, args[:n]...), args[n:]
	}
	if len(global) > 0 {
		args = append(append([]string(nil), args...), global...)
	}
	if len(args) == 0 || isHelp(args[0]) || args[0] == "help" {
		if len(args) > 1 && args[0] == "help" {
			// "help dags" lists a group; "help dags test" is "dags test --help".
			return r.run(ctx, append(args[1:], "--help"))
		}
		r.usage(r.cfg.Stdout)
		if len(args) == 0 {
			return usagef("no command given")
		}
		return nil
	}
	// Commands are one word or a group and a word.
	cmds := r.commands()
	var found *command
	rest := args
	for i := range cmds {
		words := strings.Fields(cmds[i].name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == cmds[i].name {
			found, rest = &cmds[i], args[len(words):]
			if len(global) > 0 && len(rest) >= len(global) {
				// keep global flags before a "--" so they are parsed as flags
				rest = append(append([]string(nil), global...), rest[:len(rest)-len(global)]...)
			}
			break
		}
	}
	if found == nil && r.groupUsage(args) {
		if len(args) == 1 {
			return usagef("%s: missing command", args[0])
		}
		return nil
	}
	if found == nil {
		var known []string
		for _, c := range cmds {
			if strings.HasPrefix(c.name, args[0]) {
				known = append(known, c.name)
			}
		}
		if len(known) > 0 {
			n := min(2, len(args))
			return usagef("unknown command %q; did you mean: %s", strings.Join(args[:n], " "), strings.Join(known, ", "))
		}
		return usagef("unknown command %q (see --help)", args[0])
	}
	// Help (printed by the command's flags, with every flag) and version work
	// even when a DAG is invalid.
	help := found.name == "version"
	for _, a := range rest {
		if a == "--" {
			break
		}
		help = help || isHelp(a)
	}
	if !help {
		if err := r.validate(); err != nil {
			return err
		}
	}
	return found.run(ctx, r, rest)
}

func isHelp(a string) bool { return a == "-h" || a == "--help" || a == "-help" }

// groupUsage prints the commands of a group ("dags", "tasks", "runs") for
// "GROUP", "GROUP --help" and "help GROUP"; it reports whether args named one.
func (r *Runner) groupUsage(args []string) bool {
	if len(args) > 2 || len(args) == 2 && !isHelp(args[1]) {
		return false
	}
	var sub []command
	for _, c := range r.commands() {
		if group, _, ok := strings.Cut(c.name, " "); ok && group == args[0] {
			sub = append(sub, c)
		}
	}
	if len(sub) == 0 {
		return false
	}
	w := r.cfg.Stdout
	fmt.Fprintf(w, "usage: %s %s <command> [arguments]\n\ncommands:\n", progName(), args[0])
	for _, c := range sub {
		fmt.Fprintf(w, "  %-14s %-50s %s\n", c.name, c.args, c.short)
	}
	fmt.Fprintf(w, "\n%s %s <command> --help lists a command's flags.\n", progName(), args[0])
	return true
}

func progName() string {
	if len(os.Args) > 0 {
		return filepathBase(os.Args[0])
	}
	return "trellis"
}

func filepathBase(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

func (r *Runner) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s <command> [arguments]\n\ncommands:\n", progName())
	for _, c := range r.commands() {
		fmt.Fprintf(w, "  %-14s %-50s %s\n", c.name, c.args, c.short)
	}
	fmt.Fprintf(w, "\nEvery command takes --db PATH (default $TRELLIS_DB, else %s) and --help, which lists its flags.\n", r.cfg.DB)
}

// validate checks every DAG; an invalid DAG is a usage error listing all problems.
func (r *Runner) validate() error {
	var errs []error
	seen := map[string]bool{}
	for _, d := range r.dags {
		if d == nil {
			errs = append(errs, errors.New("nil DAG given to the runner"))
			continue
		}
		if seen[d.ID()] {
			errs = append(errs, fmt.Errorf("dag %q: given twice", d.ID()))
		}
		seen[d.ID()] = true
		if err := d.Validate(); err != nil {
			errs = append(errs, err)
		}
		for _, t := range d.Tasks() {
			set := task.SettingsOf(t)
			p := set.Pool
			if p == "" {
				p = scheduler.DefaultPool
			}
			switch {
			case p != scheduler.DefaultPool && r.cfg.Pools[p] == 0:
				errs = append(errs, fmt.Errorf("dag %q: task %q: pool %q is not declared (declare it with its slots in runner.Config.Pools; declared: %s)",
					d.ID(), t.ID(), p, r.pools().Names()))
			case set.PoolSlots > r.pools().Size(p):
				errs = append(errs, fmt.Errorf("dag %q: task %q takes %d slots of pool %q, which has %d: it could never run",
					d.ID(), t.ID(), set.PoolSlots, p, r.pools().Size(p)))
			}
		}
	}
	if len(errs) > 0 {
		return &UsageError{fmt.Errorf("invalid DAGs:\n%w", errors.Join(errs...))}
	}
	return nil
}

func (r *Runner) dag(id string) (*dag.DAG, error) {
	for _, d := range r.dags {
		if d.ID() == id {
			return d, nil
		}
	}
	ids := make([]string, 0, len(r.dags))
	for _, d := range r.dags {
		ids = append(ids, d.ID())
	}
	sort.Strings(ids)
	return nil, usagef("unknown dag %q (this binary has: %s)", id, strings.Join(ids, ", "))
}
