//go:build !race

package integration

// raceEnabled reports a build with the race detector (go test -race).
const raceEnabled = false
