package bench

import (
	"os"
	"testing"
	"time"
)

// TestCPUAccounting checks what the report's CPU figures rest on: while
// this process spins until its /proc/PID/stat shows 300 ms more CPU, the
// machine's busy time in /proc/stat grows by about as much at least.
func TestCPUAccounting(t *testing.T) {
	self := []proc{{"test", os.Getpid()}}
	before, mBefore := cpuTimes(t, self), machineCPU(t)
	deadline := time.Now().Add(20 * time.Second)
	var used time.Duration
	for used < 300*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("the process's CPU time grew by only %v in 20 s of spinning", used)
		}
		for end := time.Now().Add(20 * time.Millisecond); time.Now().Before(end); {
		}
		used = cpuTimes(t, self)[0] - before[0]
	}
	m := machineCPU(t).sub(mBefore)
	// Both count in 10 ms ticks, sampled separately: allow a few.
	if m.busy < used-50*time.Millisecond {
		t.Errorf("machine busy time grew by %v while this process used %v", m.busy, used)
	}
	if m.idle < 0 || m.steal < 0 {
		t.Errorf("machine CPU times went backwards: %+v", m)
	}
}
