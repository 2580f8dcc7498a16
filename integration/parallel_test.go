package integration

import (
	"flag"
	"runtime"
	"strconv"
)

// parallelTests is how many parallel tests run at once when go test is not
// given -parallel (whose default is GOMAXPROCS: 2 on the CI machine). The
// parallel tests wait on heartbeats, timeouts and other processes, not the
// CPU (the whole suite uses about a third of a core on average), so twice
// the cores keeps the machine far from busy. Under -race, whose code costs
// the CPU many times over, the default GOMAXPROCS stays.
const parallelTests = 4

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
