# shellcheck shell=bash
# Sourced by scripts that act on "the stack in use": points the runtime's outputs loader at it unless the
# caller already did (SHOPFDS_STACK_OUTPUTS, SHOPFDS_OUTPUTS_FILE or SHOPFDS_PULUMI_STACK).
# With Docker and the Pulumi CLI that is the Pulumi stack $STACK (default dev); otherwise the local
# development stack that `make dev` started.
if [[ -z "${SHOPFDS_STACK_OUTPUTS:-}${SHOPFDS_OUTPUTS_FILE:-}${SHOPFDS_PULUMI_STACK:-}" ]]; then
  if command -v pulumi >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    export SHOPFDS_PULUMI_STACK="${STACK:-dev}"
  else
    export SHOPFDS_OUTPUTS_FILE="${SHOPFDS_LOCAL_STACK_DIR:-$PWD/.local-stack/dev}/outputs.json"
    if [[ ! -f "$SHOPFDS_OUTPUTS_FILE" ]]; then
      echo "The development stack is not running (no $SHOPFDS_OUTPUTS_FILE): start it with 'make dev'." >&2
      exit 1
    fi
  fi
fi
