#!/usr/bin/env bash
# make test: the three test layers. Starts the local stack's test profile once (its own ports and
# directory, so a running `make dev` is untouched), runs every test file, and stops and removes the
# stack on any exit — success, failure or interruption.
set -euo pipefail
cd "$(dirname "$0")/.."

export SHOPFDS_LOCAL_STACK_DIR="${SHOPFDS_TEST_STACK_DIR:-$PWD/.local-stack/test}"
export SHOPFDS_LOCAL_PORT_BASE="${SHOPFDS_TEST_PORT_BASE:-25400}"
export SHOPFDS_OUTPUTS_FILE="$SHOPFDS_LOCAL_STACK_DIR/outputs.json"
unset SHOPFDS_STACK_OUTPUTS SHOPFDS_PULUMI_STACK

stack() { node --import tsx scripts/local-stack.ts "$1" --profile test; }
cleanup() { stack clean >&2 || echo "test stack cleanup failed; run: SHOPFDS_LOCAL_STACK_DIR=$SHOPFDS_LOCAL_STACK_DIR make clean" >&2; }

# A run that was killed hard may have left its stack behind: remove it first.
stack clean >/dev/null
trap cleanup EXIT
trap 'exit 130' INT TERM
stack start >/dev/null

mapfile -t files < <(find tests -name '*.test.ts' -not -path '*/fixtures/*' | sort)
node --import tsx --test --test-reporter=spec "${files[@]}"
