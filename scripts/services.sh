#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) run for
# the demo and the tests, and that the current user reaches PostgreSQL
# without a password. `make demo`, `make test` and .ci/run call it first.
#
#   scripts/services.sh            check, then install or start what is missing
#   scripts/services.sh --dry-run  print what it would do, change nothing
#
# For each service, the first that applies:
#   its URL variable is set    left alone: PostgreSQL when DATABASE_URL or
#                              TEST_DATABASE_URL is set, Redis when
#                              REDIS_URL or TEST_REDIS_URL is
#   running                    nothing to do
#   installed, stopped         start it (needs root or sudo)
#   missing, apt-get           install it (Debian, Ubuntu; root or sudo), start it
#   missing, Docker            run it with docker compose (scripts/compose.services.yml)
#   otherwise                  exit 1, saying what to install and what to set
# Then, if the current user cannot log in to PostgreSQL, it creates a
# superuser role and a database of that name, and lets the role in from
# 127.0.0.1 and ::1 with trust authentication (pg_hba.conf).
# Last, the tests' DKIM verifier, dkimpy: nothing when a python3 imports it,
# else python3-dkim is installed with apt-get (root or sudo), else a warning
# says what to install (the demo runs without it). Then the same for
# Chromium, the headless browser of the results pages' tests, and for
# Postfix's smtp-sink and smtp-source, the SMTP server and client the
# benchmark's part c and its test measure against (the postfix package;
# its mail daemon is not started).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dry=
case "${1:-}" in
  "") ;;
  --dry-run) dry=1 ;;
  *) echo "usage: $0 [--dry-run]" >&2; exit 2 ;;
esac
# Where Debian keeps its PostgreSQL clusters; tests point it elsewhere.
pg_etc=${SERVICES_PG_ETC:-/etc/postgresql}
# Where Debian installs Postfix's programs; tests point it elsewhere.
postfix_sbin=${SERVICES_POSTFIX_SBIN:-/usr/sbin}
# The interpreters the DKIM tests try, in order; tests replace them.
pythons=${SERVICES_PYTHONS:-/usr/bin/python3 python3}

say() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: %s\n' "$@" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# act runs a command that changes the machine, showing it first.
act() {
  if [ -n "$dry" ]; then say "would run: $*"; return 0; fi
  say "+ $*"
  "$@"
}

is_root() { [ "$(id -u)" -eq 0 ]; }
can_root() { is_root || have sudo; }
# as_root runs a command as root, through sudo unless the script is root.
as_root() { if is_root; then act "$@"; else act sudo "$@"; fi; }
# as_postgres runs a command as the postgres system user; quiet is for reads.
as_postgres() { if is_root; then act runuser -u postgres -- "$@"; else act sudo -u postgres -- "$@"; fi; }
as_postgres_quiet() { if is_root; then runuser -u postgres -- "$@"; else sudo -u postgres -- "$@"; fi; }
as_root_quiet() { if is_root; then "$@"; else sudo "$@"; fi; }

apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

docker_usable() { have docker && docker compose version >/dev/null 2>&1 && docker info >/dev/null 2>&1; }
compose_up() {
  act docker compose -f "$here/compose.services.yml" -p nurture-services up -d --wait "$1"
}

# wait_for polls a check for up to 60 seconds after a start.
wait_for() {
  local what=$1; shift
  [ -n "$dry" ] && return 0
  for _ in $(seq 1 60); do
    if "$@"; then return 0; fi
    sleep 1
  done
  die "$what did not answer within 60 seconds of being started"
}

user=$(id -un)
# The role scripts/compose.services.yml creates, when PostgreSQL runs there.
export NURTURE_PGUSER=$user
case "$user" in
  [a-z_]*) ;;
  *) die "user name \"$user\" is not one this script can make a PostgreSQL role of" ;;
esac
case "$user" in
  *[!a-z0-9_-]*) die "user name \"$user\" is not one this script can make a PostgreSQL role of" ;;
esac

cannot_install() {
  local what=$1
  say "$what is not installed, and this script cannot install it: that takes apt-get (Debian, Ubuntu) with root or sudo, or Docker with compose."
  if [ "$what" = PostgreSQL ]; then
    die "Install PostgreSQL and start it on 127.0.0.1:5432 with a role \"$user\" that logs in without a password" \
      "  (macOS: brew install postgresql@16 && brew services start postgresql@16)," \
      "or use a server you have: set TEST_DATABASE_URL=postgres://USER@HOST:5432/postgres for make test," \
      "DATABASE_URL=postgres://USER@HOST:5432/nurture for nurture, and give the demo --database-url postgres://USER@HOST:5432/nurture_demo."
  fi
  die "Install Redis and start it on 127.0.0.1:6379" \
    "  (macOS: brew install redis && brew services start redis)," \
    "or use a server you have: set TEST_REDIS_URL=redis://HOST:6379/0 for make test," \
    "REDIS_URL=redis://HOST:6379/0 for nurture, and give the demo --redis-url redis://HOST:6379/15."
}

# PostgreSQL

pg_up() { have pg_isready && pg_isready -h 127.0.0.1 -p 5432 -q >/dev/null 2>&1; }
pg_installed() { have pg_ctlcluster && [ -n "$(ls "$pg_etc" 2>/dev/null)" ]; }
# pg_version is the first cluster's version, as .ci/run has always started it.
pg_version() { local v; v=$(ls "$pg_etc" 2>/dev/null | head -n1); echo "${v:-VERSION}"; }
pg_start() {
  can_root || die "PostgreSQL is installed but not running, and starting it takes root or sudo:" \
    "run as root: pg_ctlcluster $(pg_version) main start," \
    "or set TEST_DATABASE_URL and DATABASE_URL to a server you have."
  as_root pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" main start
  wait_for PostgreSQL pg_up
}
pg_login() { psql -w -h 127.0.0.1 -p 5432 -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; }
pg_query() { as_postgres_quiet psql -w -Atqc "$1" 2>/dev/null; }

# pg_role lets the current user in: a role, a database of its name, and
# trust from loopback in pg_hba.conf, ahead of the lines asking passwords.
pg_role() {
  have psql || return 0 # no client here: a server in Docker has the role already
  pg_login && return 0
  can_root || die "PostgreSQL on 127.0.0.1:5432 does not let \"$user\" in, and setting that up takes root or sudo:" \
    "as the postgres user, run createuser --superuser $user, and add \"host all $user 127.0.0.1/32 trust\"" \
    "at the top of pg_hba.conf; or set TEST_DATABASE_URL and DATABASE_URL to URLs with a user and password."
  if [ "$(pg_query "SELECT 1 FROM pg_roles WHERE rolname = '$user'")" != 1 ]; then
    as_postgres createuser --superuser "$user"
  fi
  if [ "$(pg_query "SELECT 1 FROM pg_database WHERE datname = '$user'")" != 1 ]; then
    as_postgres createdb --owner "$user" "$user"
  fi
  local hba
  hba=$(pg_query 'SHOW hba_file')
  if ! as_root_quiet grep -q "^host all $user 127.0.0.1/32 trust" "$hba"; then
    as_root sed -i "1i host all $user 127.0.0.1/32 trust\nhost all $user ::1/128 trust" "$hba"
    as_postgres psql -w -qo /dev/null -c 'SELECT pg_reload_conf()'
  fi
  [ -n "$dry" ] && return 0
  pg_login || die "PostgreSQL still does not let \"$user\" in from 127.0.0.1 after creating the role: check $hba"
}

ensure_postgres() {
  if [ -n "${TEST_DATABASE_URL:-}${DATABASE_URL:-}" ]; then
    say "PostgreSQL: TEST_DATABASE_URL or DATABASE_URL is set, leaving it to you"
    return 0
  fi
  if pg_up; then
    say "PostgreSQL is running on 127.0.0.1:5432"
  elif pg_installed; then
    say "PostgreSQL is installed but not running: starting it"
    pg_start
  elif have apt-get && can_root; then
    say "PostgreSQL is not installed: installing it with apt-get"
    apt_install postgresql
    pg_up || pg_start
  elif docker_usable; then
    say "PostgreSQL is not installed: running it with docker compose"
    compose_up postgres
  else
    cannot_install PostgreSQL
  fi
  pg_role
}

# Redis

redis_up() { have redis-cli && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }
redis_start() {
  can_root || die "Redis is installed but not running, and starting it takes root or sudo:" \
    "start redis-server on 127.0.0.1:6379, or set TEST_REDIS_URL and REDIS_URL to a server you have."
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis redis_up
}

ensure_redis() {
  if [ -n "${TEST_REDIS_URL:-}${REDIS_URL:-}" ]; then
    say "Redis: TEST_REDIS_URL or REDIS_URL is set, leaving it to you"
    return 0
  fi
  if redis_up; then
    say "Redis is running on 127.0.0.1:6379"
  elif have redis-server; then
    say "Redis is installed but not running: starting it"
    redis_start
  elif have apt-get && can_root; then
    say "Redis is not installed: installing it with apt-get"
    apt_install redis-server
    redis_up || redis_start
  elif docker_usable; then
    say "Redis is not installed: running it with docker compose"
    compose_up redis
  else
    cannot_install Redis
  fi
}

# dkimpy, the independent DKIM verifier of internal/mail's tests

dkimpy_present() {
  local py
  for py in $pythons; do
    "$py" -c 'import dkim' >/dev/null 2>&1 && return 0
  done
  return 1
}

ensure_dkimpy() {
  dkimpy_present && return 0
  if have apt-get && can_root; then
    say "dkimpy, the DKIM verifier of the tests, is not installed: installing python3-dkim with apt-get"
    apt_install python3-dkim
  else
    say "dkimpy, the DKIM verifier of the tests, is not installed, and installing it takes apt-get with root or sudo."
    say "The DKIM tests fail without it: install python3-dkim (Debian, Ubuntu) or pip install dkimpy."
  fi
}

# Chromium, the headless browser of the results pages' tests

ensure_chromium() {
  { have chromium || have chromium-browser; } && return 0
  if have apt-get && can_root; then
    say "chromium, the browser of the results pages' tests, is not installed: installing it with apt-get"
    apt_install chromium
  else
    say "chromium, the browser of the results pages' tests, is not installed, and installing it takes apt-get with root or sudo."
    say "The browser tests are skipped without it (outside CI): install chromium (Debian) or chromium-browser."
  fi
}

# Postfix's smtp-sink and smtp-source, of the benchmark's part c

postfix_tools_present() {
  local t
  for t in smtp-sink smtp-source; do
    have "$t" || [ -x "$postfix_sbin/$t" ] || return 1
  done
}

ensure_postfix_tools() {
  postfix_tools_present && return 0
  if have apt-get && can_root; then
    say "smtp-sink and smtp-source, the SMTP server and client of the benchmark's part c, are not installed: installing postfix with apt-get"
    # Answered "No configuration": installed, not set up as a mail server.
    if [ -z "$dry" ] && have debconf-set-selections; then
      echo "postfix postfix/main_mailer_type select No configuration" | as_root_quiet debconf-set-selections
    fi
    apt_install postfix
  else
    say "smtp-sink and smtp-source, the SMTP server and client of the benchmark's part c, are not installed, and installing them takes apt-get with root or sudo."
    say "The part c test is skipped without them: install postfix (Debian, Ubuntu)."
  fi
}

ensure_postgres
ensure_redis
ensure_dkimpy
ensure_chromium
ensure_postfix_tools
