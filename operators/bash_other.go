//go:build !linux

package operators

import "syscall"

// groupAttr puts the shell in a process group of its own.
func groupAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
