package web

// For the benchmarks of package web_test (bench_test.go).
var (
	SlowLogQueue = slowLogQueue
	TwoServers   = twoServers
	NonReader    = nonReader
	NormalGet    = normalGet
	SettleLog    = settle
	SetLogStall  = setStall
)

// LogAnswersHeld is the bytes that the log answers being written hold.
func LogAnswersHeld() int64 { return logHeld.inUse() }
