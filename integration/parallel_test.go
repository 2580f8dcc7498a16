package integration

import (
	"flag"
	"runtime"
	"strconv"
)

// parallelTests is how many parallel tests run at once when go test is not
// given -parallel (whose default is GOMAXPROCS: 2 on the CI machine). The
// parallel tests wait on heartbeats, timeouts and other processes more than
// on the CPU (the whole suite uses about a quarter of a core on average).
// Four at once passed on this 2-core machine under a load of 8 but starved
// a load of 12 (stalls of 1-4 s: clusters that did not form in 5 s); three
// is the measured compromise. Under -race, whose code costs the CPU many
// times over, the default GOMAXPROCS stays.
const parallelTests = 3

// defaultParallel sets -test.parallel to parallelTests unless it was given.
// TestMain calls it before m.Run.
func defaultParallel() {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given && !raceEnabled {
		_ = flag.Set("test.parallel", strconv.Itoa(max(parallelTests, runtime.GOMAXPROCS(0))))
	}
}
