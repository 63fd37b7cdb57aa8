package bench

import (
	"os"
	"syscall"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// A command name with spaces and parentheses, as a process may choose.
	line := "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 500 0 0 0 123 45 6 7 20 0 1 0 100 1000 200\n"
	got, err := parseProcStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	want := procTimes{comm: "a (b) c", own: 1680 * time.Millisecond, children: 130 * time.Millisecond}
	if got != want {
		t.Errorf("parseProcStat = %+v, want %+v", got, want)
	}
	if _, err := parseProcStat([]byte("4242 (x) S 1 2")); err == nil {
		t.Error("a short line parsed")
	}
}

func TestParseMachineCPU(t *testing.T) {
	data := "cpu  100 2 30 1000 40 5 6 7 0 0\ncpu0 50 1 15 500 20 2 3 3 0 0\n"
	got, err := parseMachineCPU([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := machineCPU{busy: 150 * clockTick, idle: 1040 * clockTick}
	if got != want {
		t.Errorf("parseMachineCPU = %+v, want %+v", got, want)
	}
}

// TestCPUMeterSelf burns CPU in this process and checks that /proc saw as
// much as the kernel's own account of the process (getrusage), give or
// take the ticks /proc rounds to.
func TestCPUMeterSelf(t *testing.T) {
	self := cpuGroup{name: "self", match: onePID(os.Getpid())}
	none := cpuGroup{name: "none", match: func(int, string) bool { return false }}
	before := rusageCPU(t)
	m, err := startCPU(self, none)
	if err != nil {
		t.Fatal(err)
	}
	x := 1
	for rusageCPU(t)-before < 300*time.Millisecond {
		for i := range 100_000 {
			x = x*31 + i
		}
	}
	u, err := m.stop()
	if err != nil {
		t.Fatal(err)
	}
	used := rusageCPU(t) - before
	got := u.by["self"]
	if d := got - used; d < -50*time.Millisecond || d > 50*time.Millisecond {
		t.Errorf("/proc says this process used %v; getrusage says %v (x=%d)", got, used, x)
	}
	if u.by["none"] != 0 {
		t.Errorf("an empty group used %v", u.by["none"])
	}
	if u.machine.busy < got-50*time.Millisecond {
		t.Errorf("the machine was busy %v, less than this process's %v", u.machine.busy, got)
	}
	if u.others() != max(u.machine.busy-got, 0) {
		t.Errorf("others = %v, want busy %v - %v", u.others(), u.machine.busy, got)
	}
}

func rusageCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestCPUBetweenCountsReapedChildren(t *testing.T) {
	pg := cpuGroup{name: "pg", match: commPrefix("postgres"), children: true}
	start := map[int]procTimes{
		1: {comm: "postgres", own: 100, children: 1000},
		2: {comm: "postgres", own: 50},    // a backend that ends in between
		3: {comm: "postgres", own: 70},    // alive at both
		9: {comm: "redis-server", own: 5}, // not in the group
	}
	end := map[int]procTimes{
		1: {comm: "postgres", own: 110, children: 1080}, // reaped 2 (80 in all)
		3: {comm: "postgres", own: 90},
		4: {comm: "postgres", own: 30}, // a backend that appeared
		9: {comm: "redis-server", own: 500},
	}
	if got, want := pg.cpuBetween(start, end), time.Duration(10+80+20+30); got != want {
		t.Errorf("cpuBetween = %v, want %v", got, want)
	}
}
