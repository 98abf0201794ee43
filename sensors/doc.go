// Package sensors has the built-in sensors: tasks that wait, deferred and
// holding no slot between pokes, for a file, an HTTP endpoint, a moment, or
// another DAG of the same binary; and TriggerDAG, which starts another DAG's
// run and can wait for it. Each is a task.Sensor, so task.PokeInterval,
// task.SensorTimeout, task.SoftFail, task.PokeBackoff and every task option
// apply.
//
//	landed := sensors.File("landed", "/data/in/{{ .DS }}/*.csv", task.PokeInterval(time.Minute))
//	load := task.Go("load", func(ctx context.Context, r *task.Run) (int, error) {
//		files, err := task.Output(r, landed) // the matching paths
//		return len(files), err
//	})
//	landed.Then(load)
package sensors
