#!/usr/bin/env bash
# FR-031: drops every table (and type, function and the migration record) of the configured database and
# recreates the latest schema. Refuses a database other than the stack's own, a replica, and Pulumi
# stacks named prod*. On a terminal it asks for the database name first; --yes skips that.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/stack-env.sh
exec node --import tsx service/bin/migrate.ts reset "$@"
