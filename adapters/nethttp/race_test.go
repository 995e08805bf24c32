//go:build race

package nethttp

const raceEnabled = true
