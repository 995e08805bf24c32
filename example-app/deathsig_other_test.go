//go:build !linux

package main

import "os/exec"

// setDeathSignal does nothing where the OS has no parent-death signal; the
// test's cleanup still kills the app.
func setDeathSignal(*exec.Cmd) {}
