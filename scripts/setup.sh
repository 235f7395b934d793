#!/usr/bin/env bash
# make setup: everything a fresh Debian/Ubuntu machine needs for `make dev` and `make test`.
# Safe to rerun: each step checks first and does only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# 1. Node.js ≥ 20 (the machine's own; we do not download toolchains).
command -v node >/dev/null || die "Node.js ≥ 20 is required (apt-get install nodejs npm, or your usual Node install)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || die "Node.js ≥ 20 is required (found $(node --version))"

# 2. Debian packages: the PostgreSQL ≥ 15 server binaries, redis-server/redis-cli (≥ 7.0) and
#    rabbitmq-server for the local stack (the machine's own services on 5432, 6379 and 5672 are never
#    touched), python3-celery (with SQLAlchemy and psycopg2 for its database result backend) for the interop tests, Prometheus, Alertmanager, node-exporter and redis_exporter (with
#    promtool and amtool) for the monitoring tests, wrk for the benchmark, a font for the dashboard
#    PNGs, and make. None of their
#    services is started.
have_pg() { ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && [ "$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n | tail -1)" -ge 15 ]; }
missing=()
have_pg || missing+=(postgresql-15)
command -v make >/dev/null || missing+=(make)
# ss: make test skips a port block with anything listening in it.
command -v ss >/dev/null || missing+=(iproute2)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
# Debian's Celery: the tests prove interop with a real Celery worker, producer, event monitor and inspect.
/usr/bin/python3 -c "import celery" 2>/dev/null || missing+=(python3-celery)
# Celery's database result backend (SQLAlchemy on psycopg2): the chord tests share it with Python.
/usr/bin/python3 -c "import sqlalchemy" 2>/dev/null || missing+=(python3-sqlalchemy)
/usr/bin/python3 -c "import psycopg2" 2>/dev/null || missing+=(python3-psycopg2)
# promtool and amtool check the monitoring configs and run the alert-rule unit tests.
command -v promtool >/dev/null || missing+=(prometheus)
command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
command -v prometheus-node-exporter >/dev/null || missing+=(prometheus-node-exporter)
# The local stack scrapes every Redis node through one redis_exporter, as the stacks do.
command -v prometheus-redis-exporter >/dev/null || missing+=(prometheus-redis-exporter)
# wrk: the benchmark's HTTP load generator (C, a process of its own; tests/unit/bench-tools.test.ts).
command -v wrk >/dev/null || missing+=(wrk)
# The shell linter: make test checks every shell script with it (scripts/lint.ts).
command -v shellcheck >/dev/null || missing+=(shellcheck)
# A font for the labels of `make dashboards`' PNGs (resvg draws text with the system's fonts).
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
if [ "${#missing[@]}" -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages: ${missing[*]}; run: sudo apt-get install -y ${missing[*]}"
  say "installing Debian packages: ${missing[*]}"
  # Installing PostgreSQL must not create and start a 'main' cluster of its own.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/shopfds-no-main-cluster.conf
  # Packages that ship a service (redis-server) must not start it: the local stack runs its own
  # servers. policy-rc.d (exit 101) is Debian's switch for that; ours is removed right after.
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=yes
  fi
  trap 'if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi' EXIT
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]/postgresql-15/postgresql}" >/dev/null
  have_pg || die "PostgreSQL ≥ 15 server binaries are still missing after apt-get install"
  command -v redis-server >/dev/null || die "redis-server is still missing after apt-get install"
  [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || die "rabbitmq-server is still missing after apt-get install"
fi
redis_major=$(redis-server --version | sed -n 's/.* v=\([0-9]*\)\..*/\1/p')
[ "${redis_major:-0}" -ge 7 ] || die "redis-server ≥ 7.0 is required (cluster-port, announced host names); found $(redis-server --version)"
say "PostgreSQL server binaries: $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1); $(redis-server --version | cut -d' ' -f1-3)"

# 3. npm packages, exactly as locked.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi
# 4. Images, where a Docker engine runs (the dev stack pulls the rest itself on `pulumi up`).
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  # The dev stack's own pins (tests/pulumi/docker-inputs.test.ts checks each is one the dev program pulls).
  for image in postgres:15.8-bookworm redis:7.0.15-bookworm rabbitmq:3.13.7-management axllent/mailpit:v1.21 prom/prometheus:v2.42.0 prom/alertmanager:v0.25.0; do
    docker image inspect "$image" >/dev/null 2>&1 || { say "pulling $image"; docker pull -q "$image" >/dev/null; }
  done
fi

# 5. Initial migrations, when a development stack is already up (make dev applies them itself).
if [ -z "${CI:-}" ] && [ -f .local-stack/dev/outputs.json ] && node --import tsx scripts/local-stack.ts status --profile dev >/dev/null 2>&1; then
  say "applying migrations to the running development stack"
  SHOPFDS_OUTPUTS_FILE="$PWD/.local-stack/dev/outputs.json" node --import tsx service/bin/migrate.ts up | sed 's/^/[setup] /' || say "migrations not applied (is the stack running? make dev)"
fi
say "ready: 'make dev' starts the development environment, 'make test' runs every test"
