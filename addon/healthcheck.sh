#!/usr/bin/env bash
# ==============================================================================
# Health check: a real Wyoming describe -> info round trip, not just an open port
# (a server whose event loop is stuck still accepts connections).
#   verba-healthcheck [HOST] [PORT] [TIMEOUT_SECONDS]   (127.0.0.1 10200 5)
# Exit 0 when `info` arrives in time, non-zero otherwise. Needs only bash and
# coreutils' timeout (/dev/tcp is bash's own).
# ==============================================================================
set -o errexit -o nounset -o pipefail

host="${1:-127.0.0.1}"
port="${2:-10200}"
seconds="${3:-5}"

# shellcheck disable=SC2016  # the inner script expands its own positional args
exec timeout "${seconds}" bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "%s\n" "{\"type\": \"describe\"}" >&3
    # The reply starts with a JSON header line; its data/payload follow without a newline.
    while IFS= read -r line <&3; do
        [[ "${line}" =~ \"type\":\ *\"info\" ]] && exit 0
    done
    exit 1
' "${host}" "${port}"
