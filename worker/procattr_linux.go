package worker

import "syscall"

// procAttr puts the worker in its own process group (so signals reach what it
// spawned) and kills it if herd dies, even by SIGKILL.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
