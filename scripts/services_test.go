// Package scripts_test tests services.sh, the script that brings up
// PostgreSQL and Redis for the demo and the tests, on machines made of stub
// commands: each stub records the call when it would change the machine.
package scripts_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// machine describes what a stub machine has.
type machine struct {
	root   bool   // id -u says 0; the user is root, otherwise alice
	sudo   bool   // sudo is installed
	apt    bool   // apt-get is installed
	docker bool   // docker with compose and a daemon
	pg     string // "running", "stopped" or "missing"
	redis  string // "running", "stopped" or "missing"
	noRole bool   // PostgreSQL does not let the user in yet
	// noDkimpy: no python3 imports dkim (the tests' DKIM verifier).
	noDkimpy bool
	// noChromium: no chromium (the pages' tests' browser).
	noChromium bool
	// noPostfix: no smtp-sink and smtp-source (the benchmark's part c).
	noPostfix bool
}

// stub is every stub command; it acts on the state directory and records
// the calls that change the machine, as "VIA NAME ARGS", where VIA is how
// it was run (sudo, runuser) and arguments that are empty or hold spaces
// are quoted.
const stub = `#!BASH
state=STATE
name=${0##*/}
record() {
  local line=$STUB_VIA a
  for a in "$@"; do
    if [ -z "$a" ] || [ "$a" != "${a#* }" ]; then line+="'$a' "; else line+="$a "; fi
  done
  printf '%s\n' "${line% }" >>"$state/calls"
}
install() { for c in "$@"; do LN -sf "$state/stub" "$state/bin/$c"; done; }
trusted() { [ -f "$state/role" ] && grep -q "^host all $(cat "$state/user") 127.0.0.1/32 trust" "$state/pg_hba.conf"; }
case $name in
id)
  case $1 in -u) cat "$state/uid" ;; -un) cat "$state/user" ;; esac ;;
sudo)
  if [ "$1" = -u ]; then export STUB_VIA="sudo -u $2 -- "; shift 3; else export STUB_VIA="sudo "; fi
  exec "$@" ;;
runuser)
  export STUB_VIA="runuser -u $2 -- "; shift 3; exec "$@" ;;
apt-get)
  record ${DEBIAN_FRONTEND:+DEBIAN_FRONTEND=$DEBIAN_FRONTEND} apt-get "$@"
  case " $* " in
  *" postgresql "*) install pg_ctlcluster pg_isready psql createuser createdb; MKDIR -p "$state/etc/16" ;;
  *" redis-server "*) install redis-server redis-cli ;;
  *" python3-dkim "*) install python3 ;;
  *" chromium "*) install chromium ;;
  *" postfix "*) install smtp-sink smtp-source ;;
  esac ;;
chromium | smtp-sink | smtp-source) ;;
debconf-set-selections) record debconf-set-selections "$(cat)" ;;
python3) [ "$*" = "-c import dkim" ] ;;
pg_isready) [ -f "$state/pg_running" ] ;;
pg_ctlcluster) record pg_ctlcluster "$@"; TOUCH "$state/pg_running" ;;
psql)
  case "$*" in
  *pg_reload_conf*) record psql "$@" ;;
  *"FROM pg_roles"*) [ -f "$state/role" ] && echo 1 ;;
  *"FROM pg_database"*) [ -f "$state/db" ] && echo 1 ;;
  *"SHOW hba_file"*) echo "$state/pg_hba.conf" ;;
  *) [ -f "$state/pg_running" ] && trusted ;;
  esac ;;
createuser) record createuser "$@"; TOUCH "$state/role" ;;
createdb) record createdb "$@"; TOUCH "$state/db" ;;
sed) record sed "$@"; exec SED "$@" ;;
mkdir) record mkdir "$@" ;;
redis-cli) if [ -f "$state/redis_running" ]; then echo PONG; else echo "Could not connect to Redis"; exit 1; fi ;;
redis-server) record redis-server "$@"; TOUCH "$state/redis_running" ;;
docker)
  case "$*" in
  "compose version" | info) ;;
  *) record NURTURE_PGUSER=$NURTURE_PGUSER docker "$@"
     case ${@: -1} in postgres) TOUCH "$state/pg_running" ;; redis) TOUCH "$state/redis_running" ;; esac ;;
  esac ;;
*) echo "stub: no $name" >&2; exit 127 ;;
esac
`

// realTools are the commands the script uses as they are.
var realTools = []string{"dirname", "ls", "head", "seq", "sleep", "grep", "env", "cat"}

// setUp builds a machine in a directory: bin/ (the only PATH), the stub,
// state files and an empty etc/ for PostgreSQL clusters.
func setUp(t *testing.T, m machine) (dir string) {
	t.Helper()
	dir = t.TempDir()
	for _, d := range []string{"bin", "etc"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	text := strings.NewReplacer("BASH", lookPath(t, "bash"), "STATE", dir, "SED", lookPath(t, "sed"),
		"LN", lookPath(t, "ln"), "MKDIR", lookPath(t, "mkdir"), "TOUCH", lookPath(t, "touch")).Replace(stub)
	write(t, filepath.Join(dir, "stub"), text, 0o755)
	for _, tool := range realTools {
		link(t, lookPath(t, tool), filepath.Join(dir, "bin", tool))
	}
	uid, user := "1000", "alice"
	if m.root {
		uid, user = "0", "root"
	}
	write(t, filepath.Join(dir, "uid"), uid+"\n", 0o644)
	write(t, filepath.Join(dir, "user"), user+"\n", 0o644)
	write(t, filepath.Join(dir, "calls"), "", 0o644)
	write(t, filepath.Join(dir, "pg_hba.conf"), "local all postgres peer\nhost all all 127.0.0.1/32 scram-sha-256\n", 0o644)

	cmds := []string{"id", "runuser", "sed", "mkdir"}
	add := func(ok bool, names ...string) {
		if ok {
			cmds = append(cmds, names...)
		}
	}
	add(m.sudo, "sudo")
	add(m.apt, "apt-get", "debconf-set-selections")
	add(m.docker, "docker")
	add(m.pg != "missing", "pg_ctlcluster", "pg_isready", "psql", "createuser", "createdb")
	add(m.redis != "missing", "redis-server", "redis-cli")
	add(!m.noDkimpy, "python3")
	add(!m.noChromium, "chromium")
	add(!m.noPostfix, "smtp-sink", "smtp-source")
	for _, c := range cmds {
		link(t, filepath.Join(dir, "stub"), filepath.Join(dir, "bin", c))
	}
	if m.pg != "missing" {
		if err := os.Mkdir(filepath.Join(dir, "etc", "16"), 0o755); err != nil {
			t.Fatal(err)
		}
		if !m.noRole {
			touch(t, filepath.Join(dir, "role"))
			write(t, filepath.Join(dir, "pg_hba.conf"), fmt.Sprintf("host all %s 127.0.0.1/32 trust\n", user), 0o644)
		}
	}
	if m.pg == "running" {
		touch(t, filepath.Join(dir, "pg_running"))
	}
	if m.redis == "running" {
		touch(t, filepath.Join(dir, "redis_running"))
	}
	return dir
}

// runScript runs services.sh on the machine in dir, with only env set.
func runScript(t *testing.T, dir string, env []string, args ...string) (stderr string, code int, calls []string) {
	t.Helper()
	cmd := exec.Command(lookPath(t, "bash"), append([]string{"services.sh"}, args...)...)
	cmd.Env = append([]string{"PATH=" + filepath.Join(dir, "bin"), "SERVICES_PG_ETC=" + filepath.Join(dir, "etc"),
		"SERVICES_POSTFIX_SBIN=" + filepath.Join(dir, "sbin"),
		"SERVICES_PYTHONS=python3"}, env...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if len(out) > 0 {
		t.Errorf("stdout %q, want none", out)
	}
	var ex *exec.ExitError
	switch {
	case errors.As(err, &ex):
		code = ex.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "calls"))
	if err != nil {
		t.Fatal(err)
	}
	calls = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if calls[0] == "" {
		calls = nil
	}
	return errb.String(), code, calls
}

const (
	redisStart = "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log"
	redisDirs  = "mkdir -p /var/lib/redis /var/log/redis"
	pgStart    = "pg_ctlcluster --skip-systemctl-redirect 16 main start"
	pgRunning  = "services: PostgreSQL is running on 127.0.0.1:5432\n"
	redisUp    = "services: Redis is running on 127.0.0.1:6379\n"
)

func TestServices(t *testing.T) {
	t.Parallel()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	compose := "docker compose -f " + filepath.Join(wd, "compose.services.yml") + " -p nurture-services up -d --wait "

	for _, tc := range []struct {
		name       string
		m          machine
		env        []string
		args       []string
		wantCode   int
		wantCalls  []string
		wantStderr string // with HBA standing for the stub's pg_hba.conf
	}{
		{
			name:       "present: nothing to install or start",
			m:          machine{root: true, apt: true, pg: "running", redis: "running"},
			wantStderr: pgRunning + redisUp,
		},
		{
			name:      "stopped: started, not installed",
			m:         machine{root: true, apt: true, pg: "stopped", redis: "stopped"},
			wantCalls: []string{pgStart, redisDirs, redisStart},
			wantStderr: "services: PostgreSQL is installed but not running: starting it\n" +
				"services: + " + pgStart + "\n" +
				"services: Redis is installed but not running: starting it\n" +
				"services: + " + redisDirs + "\n" +
				"services: + redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save  --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log\n",
		},
		{
			name:      "stopped, not root: started through sudo",
			m:         machine{sudo: true, apt: true, pg: "stopped", redis: "stopped"},
			wantCalls: []string{"sudo " + pgStart, "sudo " + redisDirs, "sudo " + redisStart},
			wantStderr: "services: PostgreSQL is installed but not running: starting it\n" +
				"services: + sudo " + pgStart + "\n" +
				"services: Redis is installed but not running: starting it\n" +
				"services: + sudo " + redisDirs + "\n" +
				"services: + sudo redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save  --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log\n",
		},
		{
			name: "missing: installed, then started, then the user let in",
			m:    machine{root: true, apt: true, pg: "missing", redis: "missing"},
			wantCalls: []string{
				"apt-get update -qq",
				"DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql",
				pgStart,
				"runuser -u postgres -- createuser --superuser root",
				"runuser -u postgres -- createdb --owner root root",
				`sed -i '1i host all root 127.0.0.1/32 trust\nhost all root ::1/128 trust' HBA`,
				"runuser -u postgres -- psql -w -qo /dev/null -c 'SELECT pg_reload_conf()'",
				"DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server",
				redisDirs,
				redisStart,
			},
			wantStderr: "services: PostgreSQL is not installed: installing it with apt-get\n" +
				"services: + apt-get update -qq\n" +
				"services: + env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql\n" +
				"services: + " + pgStart + "\n" +
				"services: + runuser -u postgres -- createuser --superuser root\n" +
				"services: + runuser -u postgres -- createdb --owner root root\n" +
				`services: + sed -i 1i host all root 127.0.0.1/32 trust\nhost all root ::1/128 trust HBA` + "\n" +
				"services: + runuser -u postgres -- psql -w -qo /dev/null -c SELECT pg_reload_conf()\n" +
				"services: Redis is not installed: installing it with apt-get\n" +
				"services: + env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server\n" +
				"services: + " + redisDirs + "\n" +
				"services: + redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save  --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log\n",
		},
		{
			name: "running, but the user has no role: role, database and trust through sudo",
			m:    machine{sudo: true, apt: true, pg: "running", redis: "running", noRole: true},
			wantCalls: []string{
				"sudo -u postgres -- createuser --superuser alice",
				"sudo -u postgres -- createdb --owner alice alice",
				`sudo sed -i '1i host all alice 127.0.0.1/32 trust\nhost all alice ::1/128 trust' HBA`,
				"sudo -u postgres -- psql -w -qo /dev/null -c 'SELECT pg_reload_conf()'",
			},
			wantStderr: pgRunning +
				"services: + sudo -u postgres -- createuser --superuser alice\n" +
				"services: + sudo -u postgres -- createdb --owner alice alice\n" +
				`services: + sudo sed -i 1i host all alice 127.0.0.1/32 trust\nhost all alice ::1/128 trust HBA` + "\n" +
				"services: + sudo -u postgres -- psql -w -qo /dev/null -c SELECT pg_reload_conf()\n" +
				redisUp,
		},
		{
			name:     "no root and missing: what to install and what to set",
			m:        machine{apt: true, pg: "missing", redis: "missing"},
			wantCode: 1,
			wantStderr: "services: PostgreSQL is not installed, and this script cannot install it: that takes apt-get (Debian, Ubuntu) with root or sudo, or Docker with compose.\n" +
				"services: Install PostgreSQL and start it on 127.0.0.1:5432 with a role \"alice\" that logs in without a password\n" +
				"services:   (macOS: brew install postgresql@16 && brew services start postgresql@16),\n" +
				"services: or use a server you have: set TEST_DATABASE_URL=postgres://USER@HOST:5432/postgres for make test,\n" +
				"services: DATABASE_URL=postgres://USER@HOST:5432/nurture for nurture, and give the demo --database-url postgres://USER@HOST:5432/nurture_demo.\n",
		},
		{
			name:     "another system, Redis missing: what to install and what to set",
			m:        machine{root: true, pg: "running", redis: "missing"},
			wantCode: 1,
			wantStderr: pgRunning +
				"services: Redis is not installed, and this script cannot install it: that takes apt-get (Debian, Ubuntu) with root or sudo, or Docker with compose.\n" +
				"services: Install Redis and start it on 127.0.0.1:6379\n" +
				"services:   (macOS: brew install redis && brew services start redis),\n" +
				"services: or use a server you have: set TEST_REDIS_URL=redis://HOST:6379/0 for make test,\n" +
				"services: REDIS_URL=redis://HOST:6379/0 for nurture, and give the demo --redis-url redis://HOST:6379/15.\n",
		},
		{
			name:     "stopped, no root: how to start it",
			m:        machine{apt: true, pg: "stopped", redis: "running"},
			wantCode: 1,
			wantStderr: "services: PostgreSQL is installed but not running: starting it\n" +
				"services: PostgreSQL is installed but not running, and starting it takes root or sudo:\n" +
				"services: run as root: pg_ctlcluster 16 main start,\n" +
				"services: or set TEST_DATABASE_URL and DATABASE_URL to a server you have.\n",
		},
		{
			name:      "Docker, no root, services missing: docker compose up",
			m:         machine{apt: true, docker: true, pg: "missing", redis: "missing"},
			wantCalls: []string{"NURTURE_PGUSER=alice " + compose + "postgres", "NURTURE_PGUSER=alice " + compose + "redis"},
			wantStderr: "services: PostgreSQL is not installed: running it with docker compose\n" +
				"services: + " + compose + "postgres\n" +
				"services: Redis is not installed: running it with docker compose\n" +
				"services: + " + compose + "redis\n",
		},
		{
			name: "URLs set: left alone",
			m:    machine{pg: "missing", redis: "missing"},
			env:  []string{"TEST_DATABASE_URL=postgres://db.example:5432/postgres", "REDIS_URL=redis://cache.example:6379/0"},
			wantStderr: "services: PostgreSQL: TEST_DATABASE_URL or DATABASE_URL is set, leaving it to you\n" +
				"services: Redis: TEST_REDIS_URL or REDIS_URL is set, leaving it to you\n",
		},
		{
			name:      "dkimpy missing: installed with apt-get",
			m:         machine{root: true, apt: true, pg: "running", redis: "running", noDkimpy: true},
			wantCalls: []string{"apt-get update -qq", "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-dkim"},
			wantStderr: pgRunning + redisUp +
				"services: dkimpy, the DKIM verifier of the tests, is not installed: installing python3-dkim with apt-get\n" +
				"services: + apt-get update -qq\n" +
				"services: + env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-dkim\n",
		},
		{
			name: "dkimpy and Redis missing, not root: one apt-get update, through sudo",
			m:    machine{sudo: true, apt: true, pg: "running", redis: "missing", noDkimpy: true},
			wantCalls: []string{
				"sudo apt-get update -qq",
				"sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server",
				"sudo " + redisDirs,
				"sudo " + redisStart,
				"sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-dkim",
			},
			wantStderr: pgRunning +
				"services: Redis is not installed: installing it with apt-get\n" +
				"services: + sudo apt-get update -qq\n" +
				"services: + sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server\n" +
				"services: + sudo " + redisDirs + "\n" +
				"services: + sudo redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save  --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log\n" +
				"services: dkimpy, the DKIM verifier of the tests, is not installed: installing python3-dkim with apt-get\n" +
				"services: + sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-dkim\n",
		},
		{
			name: "dkimpy missing, no apt-get: a warning, not a failure",
			m:    machine{root: true, pg: "running", redis: "running", noDkimpy: true},
			wantStderr: pgRunning + redisUp +
				"services: dkimpy, the DKIM verifier of the tests, is not installed, and installing it takes apt-get with root or sudo.\n" +
				"services: The DKIM tests fail without it: install python3-dkim (Debian, Ubuntu) or pip install dkimpy.\n",
		},
		{
			name:      "chromium missing: installed with apt-get",
			m:         machine{root: true, apt: true, pg: "running", redis: "running", noChromium: true},
			wantCalls: []string{"apt-get update -qq", "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium"},
			wantStderr: pgRunning + redisUp +
				"services: chromium, the browser of the results pages' tests, is not installed: installing it with apt-get\n" +
				"services: + apt-get update -qq\n" +
				"services: + env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium\n",
		},
		{
			name: "chromium missing, no apt-get: a warning, not a failure",
			m:    machine{root: true, pg: "running", redis: "running", noChromium: true},
			wantStderr: pgRunning + redisUp +
				"services: chromium, the browser of the results pages' tests, is not installed, and installing it takes apt-get with root or sudo.\n" +
				"services: The browser tests are skipped without it (outside CI): install chromium (Debian) or chromium-browser.\n",
		},
		{
			name: "postfix missing: installed with apt-get, as no mail server",
			m:    machine{root: true, apt: true, pg: "running", redis: "running", noPostfix: true},
			wantCalls: []string{"debconf-set-selections 'postfix postfix/main_mailer_type select No configuration'",
				"apt-get update -qq", "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix"},
			wantStderr: pgRunning + redisUp +
				"services: smtp-sink and smtp-source, the SMTP server and client of the benchmark's part c, are not installed: installing postfix with apt-get\n" +
				"services: + apt-get update -qq\n" +
				"services: + env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix\n",
		},
		{
			name: "postfix missing, no apt-get: a warning, not a failure",
			m:    machine{root: true, pg: "running", redis: "running", noPostfix: true},
			wantStderr: pgRunning + redisUp +
				"services: smtp-sink and smtp-source, the SMTP server and client of the benchmark's part c, are not installed, and installing them takes apt-get with root or sudo.\n" +
				"services: The part c test is skipped without them: install postfix (Debian, Ubuntu).\n",
		},
		{
			name: "dry run: decides, changes nothing",
			m:    machine{root: true, apt: true, pg: "missing", redis: "stopped"},
			args: []string{"--dry-run"},
			wantStderr: "services: PostgreSQL is not installed: installing it with apt-get\n" +
				"services: would run: apt-get update -qq\n" +
				"services: would run: env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql\n" +
				"services: would run: pg_ctlcluster --skip-systemctl-redirect VERSION main start\n" +
				"services: Redis is installed but not running: starting it\n" +
				"services: would run: " + redisDirs + "\n" +
				"services: would run: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save  --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := setUp(t, tc.m)
			hba := filepath.Join(dir, "pg_hba.conf")
			before, err := os.ReadFile(hba)
			if err != nil {
				t.Fatal(err)
			}
			stderr, code, calls := runScript(t, dir, tc.env, tc.args...)
			stderr = strings.ReplaceAll(stderr, hba, "HBA")
			for i := range calls {
				calls[i] = strings.ReplaceAll(calls[i], hba, "HBA")
			}
			if code != tc.wantCode || stderr != tc.wantStderr {
				t.Errorf("status %d, stderr:\n%s\nwant status %d, stderr:\n%s", code, stderr, tc.wantCode, tc.wantStderr)
			}
			if !slices.Equal(calls, tc.wantCalls) {
				t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(tc.wantCalls, "\n"))
			}
			after, err := os.ReadFile(hba)
			if err != nil {
				t.Fatal(err)
			}
			want := string(before)
			if slices.ContainsFunc(tc.wantCalls, func(c string) bool { return strings.Contains(c, "sed -i") }) {
				user := "alice"
				if tc.m.root {
					user = "root"
				}
				want = fmt.Sprintf("host all %[1]s 127.0.0.1/32 trust\nhost all %[1]s ::1/128 trust\n", user) + want
			}
			if string(after) != want {
				t.Errorf("pg_hba.conf:\n%s\nwant:\n%s", after, want)
			}
		})
	}
}

// TestServicesHere runs the script on this machine, whose PostgreSQL and
// Redis run already (make test runs the script first): it must find them
// and change nothing.
func TestServicesHere(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"DATABASE_URL", "TEST_DATABASE_URL", "REDIS_URL", "TEST_REDIS_URL"} {
		if os.Getenv(v) != "" {
			t.Skipf("%s is set: the script leaves the services to it", v)
		}
	}
	cmd := exec.Command(lookPath(t, "bash"), "services.sh")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil || out.String() != "" || errb.String() != pgRunning+redisUp {
		t.Errorf("services.sh: %v\nstdout %q\nstderr %q\nwant stderr %q", err, out.String(), errb.String(), pgRunning+redisUp)
	}
}

func lookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("the test needs %s: %v", name, err)
	}
	return p
}

func write(t *testing.T, path, text string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
}

func link(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

func touch(t *testing.T, path string) { write(t, path, "", 0o644) }
