#!/usr/bin/env bash
# make test: the three test layers. Takes a free block of 1000 ports for this run (so two runs and a
# `make dev` share one machine), starts the local stack's test profile once on it (its own directory
# too), runs every test file, and stops and removes the stack on any exit — success, failure or
# interruption.
set -euo pipefail
cd "$(dirname "$0")/.."

# A block of ports below 32768 (Linux's ephemeral range), claimed with mkdir (atomic) and this shell's
# PID; a block whose owner is gone is taken over. Blocks with anything listening are skipped.
LOCKS=/tmp/shopfds-test-ports
mkdir -p "$LOCKS"
listening() { ss -ltnH 2>/dev/null | awk '{print $4}' | sed 's/.*://' | awk -v lo="$1" -v hi="$(($1 + 999))" '$1 >= lo && $1 <= hi' | grep -q .; }
claim() {
  local base=$1 lock="$LOCKS/$1"
  if ! mkdir "$lock" 2>/dev/null; then
    local owner; owner=$(cat "$lock/pid" 2>/dev/null || echo "")
    if [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null; then return 1; fi
    rm -rf "$lock"; mkdir "$lock" 2>/dev/null || return 1
  fi
  echo $$ > "$lock/pid"
  return 0
}
base="${SHOPFDS_TEST_PORT_BASE:-}"
if [ -z "$base" ]; then
  for candidate in 25000 26000 27000 28000 29000 30000 31000 20000 21000 22000 23000 24000; do
    if claim "$candidate"; then
      if listening "$candidate"; then rm -rf "${LOCKS:?}/$candidate"; continue; fi
      base=$candidate; break
    fi
  done
  [ -n "$base" ] || { echo "no free block of 1000 ports from 20000 to 31999 for the test stack" >&2; exit 1; }
  release_ports() { rm -rf "${LOCKS:?}/$base"; }
else
  release_ports() { :; }
fi
export SHOPFDS_TEST_PORT_BASE="$base"
export SHOPFDS_LOCAL_STACK_DIR="${SHOPFDS_TEST_STACK_DIR:-$PWD/.local-stack/test-$base}"
export SHOPFDS_LOCAL_PORT_BASE="$base"
export SHOPFDS_OUTPUTS_FILE="$SHOPFDS_LOCAL_STACK_DIR/outputs.json"
unset SHOPFDS_STACK_OUTPUTS SHOPFDS_PULUMI_STACK
echo "test stack: ports $base-$((base + 999)), directory $SHOPFDS_LOCAL_STACK_DIR" >&2

stack() { node --import tsx scripts/local-stack.ts "$1" --profile test; }
cleanup() {
  stack clean >&2 || echo "test stack cleanup failed; run: SHOPFDS_LOCAL_STACK_DIR=$SHOPFDS_LOCAL_STACK_DIR make clean" >&2
  release_ports
}

# A run that was killed hard may have left its stack behind: remove it first.
stack clean >/dev/null
trap cleanup EXIT
trap 'exit 130' INT TERM
stack start >/dev/null

mapfile -t files < <(find tests -name '*.test.ts' -not -path '*/fixtures/*' | sort)
node --import tsx --test --test-reporter=spec "${files[@]}"
