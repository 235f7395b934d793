#!/usr/bin/env bash
# FR-032: loads the seed data into the stack in use; idempotent (a rerun replaces the previous seed data
# and touches nothing else). Arguments go to service/bin/seed.ts: --seed N, --append, --force-production.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/stack-env.sh
exec node --import tsx service/bin/seed.ts "$@"
