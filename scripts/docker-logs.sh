#!/usr/bin/env bash
# `make logs` where the dev stack runs on Docker: follows the log of every container of the stack
# (shopfds-<stack>-*), its last lines first, each line prefixed with the container's short name; Ctrl-C
# stops them all. Never run here (no Docker engine on the development machine): the local stack's
# `make logs` is the tested path.
#   bash scripts/docker-logs.sh [stack] [lines]
set -euo pipefail
stack="${1:-dev}"
lines="${2:-10}"
mapfile -t names < <(docker ps --filter "name=shopfds-${stack}-" --format '{{.Names}}' | sort)
if [[ ${#names[@]} -eq 0 ]]; then
  echo "no running containers shopfds-${stack}-*: start the stack with make dev" >&2
  exit 1
fi
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT INT TERM
for name in "${names[@]}"; do
  short="${name#shopfds-"${stack}"-}"
  docker logs --follow --tail "$lines" "$name" 2>&1 | sed -u "s|^|[${short}] |" &
  pids+=("$!")
done
wait
