package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/trellisdag/trellis/task"
)

// childAttr puts an isolated try's child in a process group of its own and
// has the kernel SIGKILL it when the runner dies.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killMarked SIGKILLs every process of this machine whose environment holds
// one of markers as task.ProcessMarkerEnv, and waits until none is left
// (bounded by 10 s or ctx; a process may fork while it is being killed, so the
// scan repeats). It returns how many processes each marker had.
func killMarked(ctx context.Context, markers map[string]bool) (map[string]int, error) {
	killed := map[string]int{}
	if len(markers) == 0 {
		return killed, nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		found, err := scanMarked(markers)
		if err != nil {
			return killed, err
		}
		if len(found) == 0 {
			return killed, nil
		}
		for pid, m := range found {
			if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
				killed[m]++
			}
		}
		if time.Now().After(deadline) {
			return killed, fmt.Errorf("%d marked process(es) still alive after 10s", len(found))
		}
		select {
		case <-ctx.Done():
			return killed, ctx.Err()
		case <-time.After(20 * time.Millisecond): // let the kernel reap them
		}
	}
}

// scanMarked returns the live processes (not zombies) whose environment holds
// one of markers, with their marker.
func scanMarked(markers map[string]bool) (map[int]string, error) {
	dir, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	prefix := []byte(task.ProcessMarkerEnv + "=")
	found := map[int]string{}
	self := os.Getpid()
	for _, d := range dir {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + d.Name() + "/environ")
		if err != nil {
			continue // gone, or not ours to read
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, prefix); ok && markers[string(v)] && !zombie(d.Name()) {
				found[pid] = string(v)
			}
		}
	}
	return found, nil
}

// zombie reports whether a process has exited and waits to be reaped.
func zombie(pid string) bool {
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// The state follows the command name, which is in parentheses.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] == 'Z'
	}
	return false
}
