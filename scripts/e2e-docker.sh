#!/usr/bin/env bash
# The dev program, end to end, on a real Docker engine (`make e2e-docker`; the GitHub workflow's
# e2e-docker job runs this same script): build the service image from this checkout, `pulumi up --stack
# dev` with a local backend (the real images; logging on unless E2E_LOGGING=off), which waits until every
# container is healthy and every one-shot job has exited 0, run the smoke test (scripts/smoke.ts --target
# docker), then `pulumi destroy`, even when a step failed. Needs Docker and the Pulumi CLI; never runs on
# the build machines (neither exists there).
#
#   KEEP_STACK=1 bash scripts/e2e-docker.sh    # leave the containers up for a look afterwards
#   E2E_LOGGING=off bash scripts/e2e-docker.sh  # without Elasticsearch, Logstash, Kibana and Filebeat (≈3 GB less)
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in docker pulumi; do
  command -v "$tool" >/dev/null || { echo "e2e-docker: $tool is required (a Docker engine and the Pulumi CLI)" >&2; exit 2; }
done
docker info >/dev/null 2>&1 || { echo "e2e-docker: the Docker engine does not answer (docker info failed)" >&2; exit 2; }

STACK=dev
PREFIX="shopfds-$STACK"
IMAGE=shopfds-service:dev
STATE="${PWD}/.pulumi-e2e-docker"
# `pulumi stack init` writes the passphrase's salt into Pulumi.dev.yaml and the run turns logging on there:
# the checkout's file is kept aside and put back at the end (the run's own is left in $STATE).
KEPT="$STATE/Pulumi.$STACK.yaml.checkout"
export PULUMI_BACKEND_URL="file://$STATE"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-e2e-docker-only-passphrase}"
step() { printf '\n[e2e-docker %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# The dev stack's containers have fixed names and loopback ports: a `make dev` stack on this engine would collide.
if [ -n "$(docker ps -aq --filter "label=shopfds-stack=$PREFIX")" ]; then
  echo "e2e-docker: containers of $PREFIX already exist on this engine (a 'make dev' stack?); 'make clean' removes them" >&2
  exit 2
fi

cleanup() {
  status=$?
  if [ "$status" -ne 0 ]; then
    step "failed: the stack's containers and the last lines of any that is not healthy"
    docker ps -a --filter "label=shopfds-stack=$PREFIX" --format 'table {{.Names}}\t{{.Status}}' || true
    for c in $(docker ps -a --filter "label=shopfds-stack=$PREFIX" --format '{{.Names}}'); do
      case "$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$c")" in
        healthy | running) ;;
        *) echo "--- $c"; docker logs --tail 30 "$c" 2>&1 || true ;;
      esac
    done
  fi
  if [ "${KEEP_STACK:-0}" = 1 ]; then
    step "KEEP_STACK=1: leaving the stack up (PULUMI_BACKEND_URL=$PULUMI_BACKEND_URL pulumi destroy --stack $STACK --config-file $STATE/Pulumi.$STACK.yaml removes it)"
  else
    step "pulumi destroy"
    pulumi destroy --yes --stack "$STACK" --skip-preview || status=1
  fi
  cp Pulumi.dev.yaml "$STATE/Pulumi.$STACK.yaml"
  cp "$KEPT" Pulumi.dev.yaml
  exit "$status"
}

step "building the service image from this checkout ($IMAGE)"
docker build -t "$IMAGE" .

step "pulumi up (stack $STACK, local backend in $STATE)"
mkdir -p "$STATE"
cp Pulumi.dev.yaml "$KEPT"
trap cleanup EXIT
pulumi stack select "$STACK" --create
if [ "${E2E_LOGGING:-on}" = on ]; then
  pulumi config set --stack "$STACK" --path shopfds:logging.enabled true
fi
# Every container waits for its health check and every one-shot job for exit 0: when this returns, the stack is up.
pulumi up --yes --stack "$STACK" --skip-preview

step "smoke test"
node --import tsx scripts/smoke.ts --target docker --stack "$STACK"
