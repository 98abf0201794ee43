// Command mapping shows dynamic task mapping (Airflow's expand): one task
// instance, with its own state, tries, log and result, per element of a list
// known only when the run runs.
//
//   - thumbnails lists the images in $IMAGES_DIR (default /tmp/images);
//     measure, a Go function mapped over that list with task.Map, reads each
//     file's size; total reduces the sizes with a typed task.Output; checksum,
//     a Bash command mapped with task.MapOver, hashes each file ({{ .Item }})
//     and manifest reads every hash with task.MappedOutput. An empty directory
//     skips the mapped tasks, as in Airflow.
//   - resize maps a PodOperator over the same kind of list: under the
//     Kubernetes executor every element is a pod of its own, named with its map
//     index and labelled trellis.dev/map-index, whose result (a JSON file) is
//     reduced downstream; at most four run at once (task.MaxActivePerRun).
//
// Try it with no cluster:
//
//	mkdir -p /tmp/images && for i in 1 2 3; do head -c $((i*1000)) /dev/urandom > /tmp/images/$i.jpg; done
//	go run ./examples/mapping dags test thumbnails
//	go run ./examples/mapping runs show thumbnails latest
//	go run ./examples/mapping logs thumbnails latest checksum --map-index 1
//	go run ./examples/mapping render resize resize --map-index 0
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

// dir is where the images are ($IMAGES_DIR, default /tmp/images).
func dir() string {
	if d := os.Getenv("IMAGES_DIR"); d != "" {
		return d
	}
	return "/tmp/images"
}

// Size is one image's size, the result of one instance of measure.
type Size struct {
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"`
}

// Total is what total reduces the sizes to.
type Total struct {
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
}

// list returns the images of dir, sorted: the list the map tasks expand over.
func list() *task.GoTask[[]string] {
	return task.Go("list_images", func(_ context.Context, r *task.Run) ([]string, error) {
		entries, err := os.ReadDir(dir())
		if err != nil {
			return nil, fmt.Errorf("list images: %w", err)
		}
		var paths []string
		for _, e := range entries {
			if !e.IsDir() {
				paths = append(paths, filepath.Join(dir(), e.Name()))
			}
		}
		slices.Sort(paths)
		r.Log().Info("images found", "count", len(paths))
		return paths, nil
	})
}

// Thumbnails is the DAG mapped over with Go and Bash tasks.
func Thumbnails() *dag.DAG {
	images := list()
	measure := task.Map("measure", images, func(_ context.Context, r *task.Run, path string) (Size, error) {
		fi, err := os.Stat(path)
		if err != nil {
			return Size{}, err
		}
		r.Log().Info("measured", "index", r.MapIndex(), "file", path, "bytes", fi.Size())
		return Size{Name: filepath.Base(path), Bytes: fi.Size()}, nil
	}, task.Retries(2))
	total := task.Go("total", func(_ context.Context, r *task.Run) (Total, error) {
		sizes, err := task.Output(r, measure)
		if err != nil {
			return Total{}, err
		}
		var t Total
		for _, s := range sizes {
			t.Files++
			t.Bytes += s.Bytes
		}
		return t, nil
	})
	checksum := operators.Bash("checksum", `sha256sum "{{ .Item }}" | cut -d' ' -f1`, task.MapOver(images))
	manifest := task.Go("manifest", func(_ context.Context, r *task.Run) (int, error) {
		sums, err := task.MappedOutput(r, checksum)
		for i, s := range sums {
			fmt.Fprintf(r.Output(), "%d %s\n", i, s)
		}
		return len(sums), err
	})
	measure.Then(total)
	checksum.Then(manifest)
	return dag.New("thumbnails", dag.Doc("Maps a Go function and a Bash command over the images found.")).
		Add(images, measure, total, checksum, manifest)
}

// Resize is the DAG that maps a PodOperator: one pod per image.
func Resize() *dag.DAG {
	images := list()
	resize := operators.PodOf[Size]("resize", operators.PodSpec{
		Image:   "busybox:1.36",
		Command: []string{"sh", "-c"},
		Args: []string{`echo "resizing {{ .Item }} (element {{ .MapIndex }}, try {{ .TryNumber }})" && ` +
			`mkdir -p /airflow/xcom && echo '{"name": "{{ .Item }}", "bytes": 0}' > /airflow/xcom/return.json`},
		ResultPath: "/airflow/xcom/return.json",
	}, task.MapOver(images), task.MaxActivePerRun(4), task.Retries(1))
	done := task.Go("report", func(_ context.Context, r *task.Run) (int, error) {
		sizes, err := task.MappedOutput(r, resize)
		return len(sizes), err
	})
	resize.Then(done)
	return dag.New("resize", dag.Doc("Maps a PodOperator over the images found: one pod per image.")).
		Add(images, resize, done)
}

func main() {
	runner.Main(Thumbnails(), Resize())
}
