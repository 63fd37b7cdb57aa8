package bench

import (
	"os"
	"reflect"
	"syscall"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// A command name with spaces and parentheses, as a process may choose.
	line := "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 500 0 0 0 123 45 6 7 20 0 1 0 9876 1000 200\n"
	got, err := parseProcStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	want := procTimes{comm: "a (b) c", started: 9876, own: 1680 * time.Millisecond}
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

// TestCPUMeterUsage feeds readings to a meter: a process counts from its
// first reading, or in full when it started later, to its last, even when
// it ended before the meter stopped, or its pid went to another process.
func TestCPUMeterUsage(t *testing.T) {
	comm := func(name string) func(int, string) bool { return func(_ int, c string) bool { return c == name } }
	m := newCPUMeter([]cpuGroup{{name: "pg", match: comm("postgres")}, {name: "redis", match: comm("redis-server")}})
	pg := func(started int64, own time.Duration) procTimes {
		return procTimes{comm: "postgres", started: started, own: own}
	}
	m.first = map[int]procTimes{
		1: pg(1, 100),
		2: pg(2, 50),                             // a backend that ends in between
		5: pg(5, 70),                             // a backend whose pid goes to a new backend
		7: {comm: "bash", started: 7, own: 1000}, // in no group
		9: {comm: "redis-server", started: 9, own: 5},
	}
	m.record(m.first)
	m.record(map[int]procTimes{1: pg(1, 110), 2: pg(2, 80), 3: pg(30, 30), 5: pg(5, 90),
		7: {comm: "bash", started: 7, own: 2000}, 9: {comm: "redis-server", started: 9, own: 500}})
	m.record(map[int]procTimes{1: pg(1, 120), 3: pg(30, 40), 4: pg(40, 5), 5: pg(50, 8),
		7: {comm: "bash", started: 7, own: 3000}, 9: {comm: "redis-server", started: 9, own: 600}})
	u := m.usage(machineCPU{busy: 5000})
	// pg: 1 from 100 to 120, 2 from 50 to 80, 3 and 4 in full, 5 from 70
	// to 90, then the new 5 in full.
	want := map[string]time.Duration{"pg": 20 + 30 + 40 + 5 + 20 + 8, "redis": 595}
	if !reflect.DeepEqual(u.by, want) {
		t.Errorf("usage = %v, want %v", u.by, want)
	}
	if got, want := u.others(), time.Duration(5000-123-595); got != want {
		t.Errorf("others = %v, want %v", got, want)
	}
}

func TestWorksFor(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		want    bool
	}{
		{"/usr/lib/postgresql/15/bin/postgres\x00-D\x00/var/lib/postgresql/15/main\x00", true},
		{"postgres: 15/main: checkpointer \x00", true},
		{"postgres: 15/main: walwriter ", true},
		{"postgres: background writer ", true}, // no cluster name
		{"postgres: 15/main: root nurture_bench 127.0.0.1(59002) idle", true},
		{"postgres: 15/main: autovacuum worker nurture_bench", true},
		{"postgres: 15/main: root nurture_bench_events 127.0.0.1(59010) INSERT", false},
		{"postgres: 15/main: root test 127.0.0.1(59011) idle", false},
		{"postgres: 15/main: autovacuum worker test", false},
	} {
		if got := worksFor("nurture_bench", tc.cmdline); got != tc.want {
			t.Errorf("worksFor(nurture_bench, %q) = %v, want %v", tc.cmdline, got, tc.want)
		}
	}
}
