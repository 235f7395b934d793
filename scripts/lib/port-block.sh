# shellcheck shell=bash
# Sourced by scripts/test.sh: claims a block of 1000 TCP ports for one test run, so two `make test` runs
# and a `make dev` environment share one machine. A block is claimed with mkdir (atomic) and the
# claiming shell's PID; a block whose owner is gone is taken over; a block with anything listening in
# it is skipped. All blocks sit below 32768 (Linux's ephemeral range) and above the dev stack (154xx)
# and the benchmark stack (194xx).
#   claim_port_block      sets PORT_BLOCK (the first port) or fails
#   release_port_block    removes this run's claim
PORT_BLOCK_LOCKS="${PORT_BLOCK_LOCKS:-/tmp/shopfds-test-ports}"
PORT_BLOCK_CANDIDATES="${PORT_BLOCK_CANDIDATES:-25000 26000 27000 28000 29000 30000 31000 20000 21000 22000 23000 24000}"

port_block_in_use() {
  ss -ltnH 2>/dev/null | awk '{print $4}' | sed 's/.*://' | awk -v lo="$1" -v hi="$(($1 + 999))" '$1 >= lo && $1 <= hi' | grep -q .
}

port_block_take() {
  local lock="$PORT_BLOCK_LOCKS/$1" owner
  if ! mkdir "$lock" 2>/dev/null; then
    owner=$(cat "$lock/pid" 2>/dev/null || true)
    if [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null; then return 1; fi
    rm -rf "$lock"
    mkdir "$lock" 2>/dev/null || return 1
  fi
  echo "${PORT_BLOCK_OWNER:-$$}" > "$lock/pid"
}

claim_port_block() {
  mkdir -p "$PORT_BLOCK_LOCKS"
  local candidate
  for candidate in $PORT_BLOCK_CANDIDATES; do
    port_block_take "$candidate" || continue
    if port_block_in_use "$candidate"; then rm -rf "${PORT_BLOCK_LOCKS:?}/$candidate"; continue; fi
    PORT_BLOCK=$candidate
    return 0
  done
  echo "no free block of 1000 ports among: $PORT_BLOCK_CANDIDATES" >&2
  return 1
}

release_port_block() {
  [ -n "${PORT_BLOCK:-}" ] && rm -rf "${PORT_BLOCK_LOCKS:?}/$PORT_BLOCK"
  return 0
}
