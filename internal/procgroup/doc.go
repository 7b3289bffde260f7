// Package procgroup starts herd's child processes (workers, drivers) in
// process groups of their own, tied to herd's life where the OS allows, and
// kills whole groups.
package procgroup

import (
	"os/exec"
	"syscall"
)

// Kill sends SIGKILL to cmd's whole process group.
func Kill(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// Signal sends sig to cmd's whole process group.
func Signal(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, sig)
	}
}
