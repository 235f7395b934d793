#!/usr/bin/env bash
# CI, before `pulumi preview` or `pulumi up` of a stack (the workflow's preview and deploy jobs): checks
# that everything the job needs is there and says what is missing by name, instead of failing later
# inside the program:
#   - PULUMI_ACCESS_TOKEN (repository secret): the Pulumi Cloud backend, and the ESC environments the
#     stack file imports (`environment:` in Pulumi.<stack>.yaml), which hold its secret settings;
#   - on Kubernetes, KUBECONFIG_DATA (from the repository secret KUBECONFIG_<STACK>): a kubeconfig with
#     the context the stack deploys to; written to a 0600 file and exported as KUBECONFIG (GITHUB_ENV);
#   - every secret setting the program requires for this stack (scripts/ci/stack-requirements.ts),
#     resolved by `pulumi config get` (from the ESC environment or the stack's `secure:` values).
# Usage: scripts/ci/deploy-env.sh <stack>. Exits 1 naming each missing piece.
set -euo pipefail
cd "$(dirname "$0")/../.."

stack="${1:?usage: deploy-env.sh <stack>}"
upper="$(printf '%s' "$stack" | tr '[:lower:]-' '[:upper:]_')"
missing=()
say() { printf '[deploy-env] %s\n' "$*"; }

req="$(node --import tsx scripts/ci/stack-requirements.ts "$stack")"
field() { node -e 'const r = JSON.parse(process.argv[1]); const v = r[process.argv[2]]; console.log(Array.isArray(v) ? v.map((x) => (typeof x === "string" ? x : x.key)).join("\n") : (v ?? ""))' "$req" "$1"; }
platform="$(field platform)"
context="$(field context)"

if [ -z "${PULUMI_ACCESS_TOKEN:-}" ]; then
  missing+=("repository secret PULUMI_ACCESS_TOKEN (a Pulumi Cloud access token of the organisation that holds stack $stack and its ESC environments $(field environments | paste -sd, -))")
fi

if [ "$platform" = "kubernetes" ]; then
  if [ -z "${KUBECONFIG_DATA:-}" ]; then
    missing+=("repository secret KUBECONFIG_${upper} (a kubeconfig with the context $context; passed to this step as KUBECONFIG_DATA)")
  else
    kubeconfig="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/kubeconfig-$stack"
    (umask 077 && printf '%s\n' "$KUBECONFIG_DATA" > "$kubeconfig")
    if ! node -e 'const y = require("yaml").parse(require("fs").readFileSync(process.argv[1], "utf8")); process.exit((y?.contexts ?? []).some((c) => c.name === process.argv[2]) ? 0 : 1)' "$kubeconfig" "$context" 2>/dev/null; then
      missing+=("context $context in KUBECONFIG_${upper} (the stack deploys only to it: Pulumi.$stack.yaml shopfds:kubernetes.context)")
    fi
    if [ -n "${GITHUB_ENV:-}" ]; then echo "KUBECONFIG=$kubeconfig" >> "$GITHUB_ENV"; fi
    say "kubeconfig for context $context written to $kubeconfig (0600)"
  fi
fi

# The secret settings, only once the backend can be asked.
if [ -n "${PULUMI_ACCESS_TOKEN:-}" ]; then
  while IFS= read -r key; do
    [ -n "$key" ] || continue
    if ! pulumi config get --stack "$stack" "$key" >/dev/null 2>&1; then
      missing+=("secret setting $key of stack $stack (in its ESC environment's pulumiConfig, or: pulumi config set --secret --stack $stack $key …)")
    fi
  done < <(field secrets)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  for m in "${missing[@]}"; do echo "::error::missing $m" >&2; done
  exit 1
fi
say "stack $stack: token, $( [ "$platform" = kubernetes ] && echo "kubeconfig context $context, ")$(field secrets | grep -c . || true) secret settings present"
