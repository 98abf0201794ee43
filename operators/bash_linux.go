package operators

import "syscall"

// groupAttr puts the shell in a process group of its own and has the kernel
// SIGKILL it when the runner dies.
func groupAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
