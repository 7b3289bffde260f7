package procgroup

import "syscall"

// Attr puts a child in its own process group (so signals reach what it
// spawned) and kills it if herd dies, even by SIGKILL.
func Attr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
