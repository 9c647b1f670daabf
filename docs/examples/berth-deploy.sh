#!/bin/sh
# Asks a Berth webhook to deploy, then waits for the outcome. Needs curl and openssl.
#   BERTH_WEBHOOK_SECRET=whsec_... sh berth-deploy.sh https://<api>/hooks/v1/<webhook id> [version]
set -eu
URL="$1" SECRET="$BERTH_WEBHOOK_SECRET" ID="ci-$(date +%s)-$$"
sign() { t=$(date +%s); printf 't=%s,v1=%s' "$t" "$(printf '%s.%s' "$t" "$1" | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)"; }
BODY=$(printf '{"commit":"%s","notes":"CI build %s"%s}' "${GIT_COMMIT:-unknown}" "$ID" "${2:+,\"version\":\"$2\"}")
curl -sS --fail-with-body -X POST "$URL" -H "Berth-Delivery: $ID" -H "Berth-Signature: $(sign "$BODY")" -H 'Content-Type: application/json' -d "$BODY"; echo
while :; do
  S=$(curl -fsS "$URL/deliveries/$ID" -H "Berth-Signature: $(sign "$ID")" | sed -n 's/.*"status":"\([a-z_]*\)".*/\1/p')
  echo "deployment: ${S:-none}"
  case "$S" in succeeded) exit 0 ;; failed | rolled_back | partially_failed | cancelled | rejected | halted | "") exit 1 ;; esac
  sleep "${BERTH_POLL_SECONDS:-5}"
done
