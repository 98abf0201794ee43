package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/runner"
)

// TestMappingExample runs thumbnails over three files (one instance per file
// for the Go map and the Bash map, reduced downstream), reads one instance's
// log, and renders one pod of the mapped PodOperator.
func TestMappingExample(t *testing.T) {
	dir := t.TempDir()
	images := filepath.Join(dir, "images")
	if err := os.Mkdir(images, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, n := range []int{1000, 2000, 3000} {
		if err := os.WriteFile(filepath.Join(images, string(rune('a'+i))+".jpg"), bytes.Repeat([]byte{'x'}, n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("IMAGES_DIR", images)
	db := filepath.Join(dir, "trellis.db")
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		r := runner.New(runner.Config{Stdout: &out, Stderr: &out}, Thumbnails(), Resize())
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if code := r.Run(ctx, append(args, "--db", db)); code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, &out)
		}
		return out.String()
	}
	run("dags", "test", "thumbnails")
	show := run("runs", "show", "thumbnails", "latest")
	for _, want := range []string{"thumbnails: success", "measure[2]", `{"files":3,"bytes":6000}`, "checksum[1]", "[3 success]"} {
		if !strings.Contains(show, want) {
			t.Errorf("runs show lacks %q:\n%s", want, show)
		}
	}
	if log := run("logs", "thumbnails", "latest", "measure", "--map-index", "1"); !strings.Contains(log, "b.jpg") || strings.Contains(log, "a.jpg") {
		t.Errorf("log of measure[1]:\n%s", log)
	}
	pod := run("render", "resize", "resize", "--map-index", "2", "--image", "example.local/mapping:1")
	for _, want := range []string{"trellis.dev/map-index", "element 2", "busybox:1.36"} {
		if !strings.Contains(pod, want) {
			t.Errorf("rendered pod lacks %q:\n%s", want, pod)
		}
	}
}
