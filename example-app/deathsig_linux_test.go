package main

import (
	"os/exec"
	"syscall"
)

// setDeathSignal kills the app if the test process dies first, so that a
// crashed test run leaves no app running.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
