package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"nurture/internal/store"
)

// machineInfo describes where the benchmark ran.
type machineInfo struct {
	cpu      string
	cores    int
	memory   string
	goVer    string
	postgres string
	redis    string
	date     time.Time
}

// describeMachine reads the CPU and memory from /proc and asks the servers
// for their versions.
func describeMachine(ctx context.Context, st *store.Store, rdb *redis.Client, now time.Time) (machineInfo, error) {
	m := machineInfo{
		cpu:    procField("/proc/cpuinfo", "model name"),
		cores:  runtime.NumCPU(),
		memory: memTotal(),
		goVer:  runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		date:   now.UTC(),
	}
	var err error
	if m.postgres, err = st.ServerVersion(ctx); err != nil {
		return m, err
	}
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return m, fmt.Errorf("redis version: %w", err)
	}
	m.redis = infoField(info, "redis_version")
	return m, nil
}

func (m machineInfo) String() string {
	return fmt.Sprintf("%s, %d cores, %s RAM; %s; PostgreSQL %s; Redis %s",
		m.cpu, m.cores, m.memory, m.goVer, m.postgres, m.redis)
}

// procField returns the value of the first "key: value" line of a /proc
// file with that key, or "unknown".
func procField(file, key string) string {
	f, err := os.Open(file)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// memTotal is MemTotal of /proc/meminfo in GiB.
func memTotal() string {
	kb, ok := strings.CutSuffix(procField("/proc/meminfo", "MemTotal"), " kB")
	n, err := strconv.ParseFloat(strings.TrimSpace(kb), 64)
	if !ok || err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%.1f GiB", n/(1<<20))
}

// infoField returns a field of a Redis INFO reply.
func infoField(info, key string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+":"); ok {
			return v
		}
	}
	return "unknown"
}

// peakRSS is VmHWM of /proc/self/status: the most resident memory the
// process has used, in bytes.
func peakRSS() (int64, error) { return statusHWM("/proc/self/status") }

// peakRSSOf is the peak RSS of another process, alive.
func peakRSSOf(pid int) (int64, error) { return statusHWM(fmt.Sprintf("/proc/%d/status", pid)) }

// statusHWM reads VmHWM from a /proc status file, in bytes.
func statusHWM(file string) (int64, error) {
	v, ok := strings.CutSuffix(procField(file, "VmHWM"), " kB")
	if !ok {
		return 0, fmt.Errorf("no VmHWM in %s", file)
	}
	kb, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("VmHWM %q: %w", v, err)
	}
	return kb << 10, nil
}

// lockMachine makes sure one benchmark runs at a time on this machine: two
// would disturb each other's timings and share the scratch database and
// Redis DB. The lock is a flock, released when the process ends.
func lockMachine() (release func(), err error) {
	name := filepath.Join(os.TempDir(), "nurture-bench.lock")
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another nurture bench is running on this machine (it holds %s)", name)
		}
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return func() { f.Close() }, nil
}
