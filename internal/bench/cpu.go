package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of the CPU times in /proc: USER_HZ, which is 100
// on every Linux architecture the benchmark runs on (`getconf CLK_TCK`).
const clockTick = 10 * time.Millisecond

// procTimes are the CPU times of one process from /proc/PID/stat.
type procTimes struct {
	comm string
	// own is utime+stime: the CPU the process used itself.
	own time.Duration
	// children is cutime+cstime: the CPU of its children that ended and
	// were waited for.
	children time.Duration
}

// readProcTimes reads /proc/PID/stat.
func readProcTimes(pid int) (procTimes, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procTimes{}, err
	}
	return parseProcStat(data)
}

// parseProcStat parses the contents of /proc/PID/stat: "pid (comm) state
// ppid ..." where comm may hold spaces and parentheses, so the fields are
// counted from the last ')'. utime, stime, cutime and cstime are fields 14
// to 17 (proc(5)).
func parseProcStat(data []byte) (procTimes, error) {
	open, end := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if open < 0 || end < open {
		return procTimes{}, fmt.Errorf("/proc stat %q: no (comm)", data)
	}
	f := strings.Fields(string(data[end+1:]))
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 15 {
		return procTimes{}, fmt.Errorf("/proc stat %q: %d fields", data, len(f)+2)
	}
	var ticks [4]int64
	for i := range ticks {
		n, err := strconv.ParseInt(f[14-3+i], 10, 64)
		if err != nil {
			return procTimes{}, fmt.Errorf("/proc stat field %d: %w", 14+i, err)
		}
		ticks[i] = n
	}
	return procTimes{
		comm:     string(data[open+1 : end]),
		own:      time.Duration(ticks[0]+ticks[1]) * clockTick,
		children: time.Duration(ticks[2]+ticks[3]) * clockTick,
	}, nil
}

// snapshot reads the CPU times of every process, by pid.
func snapshot() (map[int]procTimes, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil, err
	}
	out := make(map[int]procTimes, len(dirs))
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if t, err := readProcTimes(pid); err == nil { // else it ended since the listing
			out[pid] = t
		}
	}
	return out, nil
}

// cpuGroup is a set of processes whose CPU is measured together.
type cpuGroup struct {
	name  string
	match func(pid int, comm string) bool
	// children counts the CPU of the children the processes waited for
	// (PostgreSQL's ended backends, reaped by the postmaster).
	children bool
}

// cpuBetween is the CPU a group used between two snapshots: processes
// alive at both count their difference, those that appeared count in
// full. Those that ended in between are lost, unless the group counts
// children and their parent is in it and waited for them: then the
// parent's children times count them (in full, their time before the
// first snapshot included). That is how PostgreSQL's backends, children of
// the postmaster, are all counted.
func (g cpuGroup) cpuBetween(start, end map[int]procTimes) time.Duration {
	var d time.Duration
	for pid, e := range end {
		if !g.match(pid, e.comm) {
			continue
		}
		s, ok := start[pid]
		if !ok || s.comm != e.comm {
			d += e.own // appeared in between (or the pid was reused)
			if g.children {
				d += e.children
			}
			continue
		}
		d += e.own - s.own
		if g.children {
			d += e.children - s.children
		}
	}
	return d
}

// cpuMeter measures the CPU of groups of processes, and of the whole
// machine, between start and stop.
type cpuMeter struct {
	groups  []cpuGroup
	start   map[int]procTimes
	machine machineCPU
}

// startCPU takes the first snapshot.
func startCPU(groups ...cpuGroup) (*cpuMeter, error) {
	m := &cpuMeter{groups: groups}
	var err error
	if m.machine, err = readMachineCPU(); err != nil {
		return nil, err
	}
	if m.start, err = snapshot(); err != nil {
		return nil, err
	}
	return m, nil
}

// cpuUsage is what a cpuMeter measured.
type cpuUsage struct {
	by      map[string]time.Duration // CPU of each group
	machine machineCPU               // the whole machine's
}

// stop takes the second snapshot and returns the CPU used since the first.
func (m *cpuMeter) stop() (cpuUsage, error) {
	end, err := snapshot()
	if err != nil {
		return cpuUsage{}, err
	}
	mc, err := readMachineCPU()
	if err != nil {
		return cpuUsage{}, err
	}
	u := cpuUsage{by: map[string]time.Duration{}, machine: mc.sub(m.machine)}
	for _, g := range m.groups {
		u.by[g.name] += g.cpuBetween(m.start, end)
	}
	return u, nil
}

// others is the busy CPU of the machine beyond the groups': other
// processes', and the kernel's work not charged to any process.
func (u cpuUsage) others() time.Duration {
	d := u.machine.busy
	for _, c := range u.by {
		d -= c
	}
	return max(d, 0)
}

// commPrefix matches the processes whose name starts with prefix.
func commPrefix(prefix string) func(int, string) bool {
	return func(_ int, comm string) bool { return strings.HasPrefix(comm, prefix) }
}

// redisServer matches the redis-server listening on port: its command line
// (which Redis rewrites to "redis-server host:port") names the port.
func redisServer(port string) func(int, string) bool {
	return func(pid int, comm string) bool {
		if comm != "redis-server" {
			return false
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		return err == nil && strings.Contains(string(cmdline), ":"+port)
	}
}

// onePID matches one process.
func onePID(pid int) func(int, string) bool {
	return func(p int, _ string) bool { return p == pid }
}

// machineCPU is the CPU time of the whole machine from /proc/stat: busy
// (user, nice, system, irq, softirq, steal) and idle (idle, iowait), summed
// over the cores.
type machineCPU struct{ busy, idle time.Duration }

// readMachineCPU reads the "cpu" line of /proc/stat.
func readMachineCPU() (machineCPU, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}, err
	}
	return parseMachineCPU(data)
}

func parseMachineCPU(data []byte) (machineCPU, error) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return machineCPU{}, fmt.Errorf("/proc/stat: first line %q is not the cpu totals", line)
	}
	var t [8]int64 // user nice system idle iowait irq softirq steal
	for i := range t {
		n, err := strconv.ParseInt(f[i+1], 10, 64)
		if err != nil {
			return machineCPU{}, fmt.Errorf("/proc/stat cpu field %d: %w", i+1, err)
		}
		t[i] = n
	}
	busy := t[0] + t[1] + t[2] + t[5] + t[6] + t[7]
	return machineCPU{busy: time.Duration(busy) * clockTick, idle: time.Duration(t[3]+t[4]) * clockTick}, nil
}

// sub is the CPU time between two readings.
func (m machineCPU) sub(earlier machineCPU) machineCPU {
	return machineCPU{busy: m.busy - earlier.busy, idle: m.idle - earlier.idle}
}
