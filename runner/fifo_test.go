package runner_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fifo makes the FIFO dir/name and returns a channel that receives the first
// line a process writes to it (opening it for reading blocks until a writer
// opens it, so the line is the event the test waits for, with its own bound).
func fifo(t *testing.T, dir, name string) <-chan string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		f, err := os.Open(path)
		if err != nil {
			lines <- "open: " + err.Error()
			return
		}
		defer f.Close()
		line, _ := bufio.NewReader(f).ReadString('\n')
		lines <- strings.TrimSpace(line)
	}()
	return lines
}
