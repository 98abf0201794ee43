// Package task defines what a DAG is made of: tasks, their typed results, trigger
// rules, retry and timeout policy, task-instance states, and the run context a try
// receives. It is the leaf of trellis: it imports nothing else of trellis.
//
// # Typed tasks and results
//
// A Go task is a function that returns a typed value. The value is stored as JSON
// (Airflow's XCom) and a downstream task reads it with Output, by handle:
//
//	extract := task.Go("extract", func(ctx context.Context, r *task.Run) ([]Order, error) {
//		start, end := r.DataInterval()
//		return fetchOrders(ctx, start, end)
//	})
//	total := task.Go("total", func(ctx context.Context, r *task.Run) (float64, error) {
//		orders, err := task.Output(r, extract) // []Order; an error unless extract is a direct upstream
//		...
//	})
//	extract.Then(total)
//
// There are no string keys: a typo in a handle does not compile, and reading a
// task that is not a direct upstream is an error (ErrNotUpstream).
//
// # Skips, branches, short circuits
//
// A task skips itself by returning ErrSkip (or Skip(reason)). A Branch task returns
// the direct downstream tasks to follow; the others are skipped. A ShortCircuit task
// that returns false skips everything downstream of it. Skips propagate through
// trigger rules, as in Airflow.
//
// # Settings
//
// Options set a task's retries, retry delay and backoff, execution timeout, trigger
// rule, priority weight, pool, executor (ExecutorConfig: local or kubernetes, a pod
// template file and a *corev1.Pod override), depends_on_past and wait_for_downstream.
// What a task does not set comes from its group's defaults, then its DAG's.
//
// # Dynamic task mapping
//
// Map runs a function once per element of an upstream's list, each element a
// task instance of its own ("size[3]": its own state, tries, log, result and
// pod), created when the run reaches it (Airflow's expand). Output reads every
// instance's result downstream, in element order:
//
//	files := task.Go("list_files", listFiles) // []string
//	size := task.Map("size", files, func(ctx context.Context, r *task.Run, path string) (int64, error) {
//		return fileSize(path) // r.MapIndex() is the element's index
//	})
//	total := task.Go("total", func(ctx context.Context, r *task.Run) (int64, error) {
//		sizes, err := task.Output(r, size) // []int64
//		...
//	})
//	size.Then(total)
//
// Any task maps with an option: MapOver (a result), MapItems (a literal list)
// or MapParam (a DAG param); Bash and Pod templates see {{ .Item }} and
// {{ .MapIndex }}, and MappedOutput reads their results. An empty list skips
// the task; a list longer than the runner's limit (DefaultMaxMapLength) fails
// the task that returned it. Trigger rules count each instance as one upstream;
// SummaryState is the state shown for the task. MaxActivePerRun and
// MaxActivePerDAG bound the instances in flight.
//
// # Groups
//
// A Group (Airflow's TaskGroup) prefixes the ids of its tasks with its own
// ("quality.check_nulls"), gives them default options, nests (Group.Group), and
// stands in an edge like a task: Then, After and Chain take a Node, a task or a
// group, and an edge into a group links to its roots, out of it from its leaves:
//
//	quality := task.NewGroup("quality", task.Retries(3), task.Pool("warehouse"))
//	quality.Add(checkNulls, checkRange)
//	etl.Add(extract, quality, load) // adds the group's tasks
//	task.Chain(extract, quality, load)
//
// # Setup and teardown
//
// A teardown (AsTeardown) removes what its setups (AsSetup) made, with Airflow
// 2.7's semantics: it runs once the work between them is done, whatever its
// outcome, if one of its setups succeeded (the trigger rule
// AllDoneSetupSuccess); its own outcome does not decide the run's state unless
// FailRunOnTeardownFailure is given, so a run whose work failed stays failed
// although its cleanup succeeded; and clearing a task also clears its setups and
// teardowns:
//
//	create := task.Go("create_cluster", createCluster)
//	del := task.Go("delete_cluster", deleteCluster, task.AsTeardown(create))
//	task.Chain(create, train, del)
package task
