//go:build !linux

package local

import (
	"context"
	"syscall"
)

// childAttr puts an isolated try's child in a process group of its own.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// killMarked finds no processes where there is no /proc: orphans of a crashed
// runner are not stopped on this system.
func killMarked(context.Context, map[string]bool) (map[string]int, error) {
	return map[string]int{}, nil
}
