//go:build !linux

package procgroup

import "syscall"

// Attr puts a child in its own process group, so signals reach what it
// spawned. Outside Linux a child outlives a killed herd until it reads EOF.
func Attr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
