package bench

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTick is the unit of the CPU times in /proc: USER_HZ, which is 100
// on every Linux architecture the benchmark runs on (`getconf CLK_TCK`).
const clockTick = 10 * time.Millisecond

// procTimes are the CPU times of one process from /proc/PID/stat.
type procTimes struct {
	comm string
	// started is when the process started, in clock ticks after boot: with
	// the pid, it tells a process from a later one given the same pid.
	started int64
	// own is utime+stime: the CPU the process used itself.
	own time.Duration
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
// counted from the last ')'. utime and stime are fields 14 and 15, and
// starttime field 22 (proc(5)).
func parseProcStat(data []byte) (procTimes, error) {
	open, end := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if open < 0 || end < open {
		return procTimes{}, fmt.Errorf("/proc stat %q: no (comm)", data)
	}
	f := strings.Fields(string(data[end+1:]))
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 20 {
		return procTimes{}, fmt.Errorf("/proc stat %q: %d fields", data, len(f)+2)
	}
	var ticks [2]int64
	for i := range ticks {
		n, err := strconv.ParseInt(f[14-3+i], 10, 64)
		if err != nil {
			return procTimes{}, fmt.Errorf("/proc stat field %d: %w", 14+i, err)
		}
		ticks[i] = n
	}
	started, err := strconv.ParseInt(f[22-3], 10, 64)
	if err != nil {
		return procTimes{}, fmt.Errorf("/proc stat field 22: %w", err)
	}
	return procTimes{comm: string(data[open+1 : end]), started: started, own: time.Duration(ticks[0]+ticks[1]) * clockTick}, nil
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
}

// cpuSample is the last reading of a process that belongs to a group.
type cpuSample struct {
	group int // index in cpuMeter.groups
	times procTimes
}

// cpuMeter measures the CPU of groups of processes, and of the whole
// machine, between start and stop. A process counts the CPU it used from
// the first reading (or its start, when it appeared later) to the last,
// and it is read every samplePeriod, so one that ends in between (a
// PostgreSQL backend whose connection closed) is lost for at most that
// long.
type cpuMeter struct {
	groups  []cpuGroup
	machine machineCPU
	first   map[int]procTimes // every process at start
	stopped chan struct{}
	done    chan struct{}

	mu    sync.Mutex
	last  map[int]cpuSample // the group members' latest readings
	ended []time.Duration   // by group: what members whose pid was reused since had used
	err   error             // the first failed reading
}

// samplePeriod is how often a cpuMeter reads /proc.
const samplePeriod = 500 * time.Millisecond

// startCPU takes the first reading, and reads again every samplePeriod
// until stop.
func startCPU(groups ...cpuGroup) (*cpuMeter, error) {
	m := newCPUMeter(groups)
	var err error
	if m.machine, err = readMachineCPU(); err != nil {
		return nil, err
	}
	if m.first, err = snapshot(); err != nil {
		return nil, err
	}
	m.record(m.first)
	go func() {
		defer close(m.done)
		tk := time.NewTicker(samplePeriod)
		defer tk.Stop()
		for {
			select {
			case <-m.stopped:
				return
			case <-tk.C:
			}
			m.sample()
		}
	}()
	return m, nil
}

func newCPUMeter(groups []cpuGroup) *cpuMeter {
	return &cpuMeter{groups: groups, last: map[int]cpuSample{}, ended: make([]time.Duration, len(groups)),
		stopped: make(chan struct{}), done: make(chan struct{})}
}

// sample reads every process and records the group members.
func (m *cpuMeter) sample() {
	snap, err := snapshot()
	if err != nil {
		m.mu.Lock()
		m.err = cmp.Or(m.err, err)
		m.mu.Unlock()
		return
	}
	m.record(snap)
}

// record keeps the readings of the processes that belong to a group now,
// and forgets those that no longer do (a backend that set its title).
func (m *cpuMeter) record(snap map[int]procTimes) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for pid, t := range snap {
		if prev, ok := m.last[pid]; ok && prev.times.started != t.started {
			// The member ended, and its pid went to a new process.
			m.ended[prev.group] += m.used(pid, prev.times)
			delete(m.last, pid)
		}
		g := slices.IndexFunc(m.groups, func(g cpuGroup) bool { return g.match(pid, t.comm) })
		if g < 0 {
			delete(m.last, pid)
			continue
		}
		m.last[pid] = cpuSample{group: g, times: t}
	}
}

// cpuUsage is what a cpuMeter measured.
type cpuUsage struct {
	by      map[string]time.Duration // CPU of each group
	machine machineCPU               // the whole machine's
}

// stop takes the last reading and returns the CPU used since the first.
func (m *cpuMeter) stop() (cpuUsage, error) {
	close(m.stopped)
	<-m.done
	m.sample()
	mc, err := readMachineCPU()
	if err != nil {
		return cpuUsage{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return cpuUsage{}, m.err
	}
	return m.usage(mc.sub(m.machine)), nil
}

// usage sums the readings by group; the caller holds mu.
func (m *cpuMeter) usage(machine machineCPU) cpuUsage {
	u := cpuUsage{by: map[string]time.Duration{}, machine: machine}
	for i, g := range m.groups {
		u.by[g.name] += m.ended[i]
	}
	for pid, s := range m.last {
		u.by[m.groups[s.group].name] += m.used(pid, s.times)
	}
	return u
}

// used is the CPU a process used from the meter's start to reading t.
func (m *cpuMeter) used(pid int, t procTimes) time.Duration {
	if f, ok := m.first[pid]; ok && f.started == t.started {
		return t.own - f.own // alive at the start: only what it used since
	}
	return t.own // started since
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

// postgresOf matches the processes of the PostgreSQL server that work for
// database db: the postmaster, its shared helpers (checkpointer, writers,
// launchers, parallel workers), and the backends and autovacuum workers of
// db, not those of the server's other databases. A backend names its
// database in its title (/proc/PID/cmdline), such as "postgres: 15/main:
// root nurture_bench 127.0.0.1(59002) idle".
func postgresOf(db string) func(int, string) bool {
	return func(pid int, comm string) bool {
		if !strings.HasPrefix(comm, "postgres") {
			return false
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		return err == nil && worksFor(db, string(cmdline))
	}
}

// worksFor reports whether the PostgreSQL process with this command line
// works for database db; see postgresOf.
func worksFor(db, cmdline string) bool {
	title, ok := strings.CutPrefix(strings.TrimRight(cmdline, "\x00"), "postgres: ")
	if !ok {
		return true // the postmaster, or a backend before it set its title
	}
	if slices.Contains(strings.Fields(title), db) {
		return true
	}
	for _, helper := range []string{"checkpointer", "background writer", "walwriter", "autovacuum launcher",
		"logical replication launcher", "archiver", "parallel worker", "stats collector"} {
		if strings.Contains(title, helper) {
			return true
		}
	}
	return false // another database's backend or autovacuum worker
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

// share is d as a share of all the machine's CPU time over m's span, "?"
// when m spans none.
func (m machineCPU) share(d time.Duration) string {
	if all := m.busy + m.idle; all > 0 {
		return fmt.Sprintf("%.0f %%", 100*d.Seconds()/all.Seconds())
	}
	return "?"
}

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
