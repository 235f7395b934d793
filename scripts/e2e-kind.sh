#!/usr/bin/env bash
# The production program, end to end, on a throw-away kind cluster (`make e2e-kind`; the GitHub
# workflow's e2e-kind job runs this same script): create the cluster, build and load the service image,
# `pulumi up` the kind stack (Pulumi.kind.yaml) with a local backend, wait until everything is ready,
# run the smoke test (scripts/smoke.ts --target kind), then `pulumi destroy` and delete the cluster, even when a
# step failed. Needs Docker, kind, kubectl and the Pulumi CLI; never runs on the build machines (none of
# them exist there).
#
#   KEEP_CLUSTER=1 bash scripts/e2e-kind.sh   # leave the cluster up for a look afterwards
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in docker kind kubectl pulumi; do
  command -v "$tool" >/dev/null || { echo "e2e-kind: $tool is required (Docker, kind, kubectl and the Pulumi CLI)" >&2; exit 2; }
done

STACK=kind
CLUSTER=shopfds
IMAGE=shopfds-service:kind
export PULUMI_BACKEND_URL="file://${PWD}/.pulumi-kind"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-kind-only-passphrase}"
mkdir -p .pulumi-kind
# `pulumi stack init` writes the passphrase's salt into Pulumi.kind.yaml and the run sets a secret there:
# the checkout's file is kept aside and put back at the end (the run's own is left in .pulumi-kind/).
KEPT=".pulumi-kind/Pulumi.$STACK.yaml.checkout"
cp "Pulumi.$STACK.yaml" "$KEPT"
step() { printf '\n[e2e-kind %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

cleanup() {
  status=$?
  if [ "${KEEP_CLUSTER:-0}" = 1 ]; then
    step "KEEP_CLUSTER=1: leaving the cluster and the stack up (kind delete cluster --name $CLUSTER to remove)"
  else
    step "pulumi destroy"
    pulumi destroy --yes --stack "$STACK" --skip-preview || status=1
    step "deleting the kind cluster"
    kind delete cluster --name "$CLUSTER" || true
  fi
  cp "Pulumi.$STACK.yaml" ".pulumi-kind/Pulumi.$STACK.yaml"
  cp "$KEPT" "Pulumi.$STACK.yaml"
  exit "$status"
}

step "creating the kind cluster"
kind get clusters 2>/dev/null | grep -qx "$CLUSTER" || kind create cluster --config scripts/kind/cluster.yaml --wait 5m
trap cleanup EXIT

step "building and loading the service image"
docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

step "an SMTP sink for the e-mail tasks"
kubectl --context "kind-$CLUSTER" apply -f scripts/kind/mailpit.yaml

step "pulumi up (stack $STACK, local backend)"
pulumi stack select "$STACK" --create
pulumi config set --secret slackWebhookUrl "https://hooks.slack.com/services/T0000/B0000/kind-e2e-not-a-real-hook"
pulumi up --yes --stack "$STACK" --skip-preview

step "waiting until every workload is ready"
for ns in shopfds-kind monitoring; do
  kubectl --context "kind-$CLUSTER" -n "$ns" wait --for=condition=Available deployment --all --timeout=10m
  # `rollout status` answers only for the RollingUpdate strategy (kubectl exits 1 on any other); ECK's
  # Elasticsearch sets are OnDelete and are waited for by ECK's phase below (tests/fixtures/upstream).
  for sts in $(kubectl --context "kind-$CLUSTER" -n "$ns" get statefulset -o jsonpath='{range .items[?(@.spec.updateStrategy.type=="RollingUpdate")]}{.metadata.name}{"\n"}{end}'); do
    kubectl --context "kind-$CLUSTER" -n "$ns" rollout status "statefulset/$sts" --timeout=10m
  done
done
kubectl --context "kind-$CLUSTER" -n shopfds-kind wait --for=condition=Ready cluster.postgresql.cnpg.io --all --timeout=10m
# One node: replicas cannot be assigned, so health is yellow; ECK's phase says the nodes are up.
kubectl --context "kind-$CLUSTER" -n shopfds-kind wait --for=jsonpath='{.status.phase}'=Ready elasticsearch --all --timeout=10m

step "smoke test"
node --import tsx scripts/smoke.ts --target kind --context "kind-$CLUSTER" --namespace shopfds-kind --prefix shopfds-kind
