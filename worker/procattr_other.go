//go:build !linux

package worker

import "syscall"

// procAttr puts the worker in its own process group, so signals reach what it
// spawned. Outside Linux a worker outlives a killed herd until it reads EOF.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
