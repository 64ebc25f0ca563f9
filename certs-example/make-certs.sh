#!/usr/bin/env bash
# Make a CA, a server certificate and client certificates for dockguard with
# `dockguard certs` (no openssl needed).
# usage: make-certs.sh DIR CLIENT... [-- SERVER-NAME-OR-IP...]
#
# The server certificate is for localhost and 127.0.0.1 plus the names and IPs
# after `--`; the first of those is the host the printed DOCKER_HOST lines use.
# Each CLIENT gets a docker CLI DOCKER_CERT_PATH directory DIR/CLIENT.
# An existing CA in DIR is never overwritten.
# The command is ${DOCKGUARD:-dockguard}, split on spaces, so for instance
# DOCKGUARD="python3 -m dockguard.cli" works too.
set -euo pipefail
usage="usage: make-certs.sh DIR CLIENT... [-- NAME-OR-IP...]"
dir=${1:?$usage}; shift
read -r -a dockguard <<< "${DOCKGUARD:-dockguard}"
clients=(); extra=()
while [ $# -gt 0 ]; do
    if [ "$1" = "--" ]; then shift; extra=("$@"); break; fi
    clients+=("$1"); shift
done

server=(--name "${extra[0]:-localhost}")
for n in localhost 127.0.0.1 "${extra[@]}"; do
    if [[ $n =~ ^[0-9.]+$ || $n == *:* ]]; then server+=(--ip "$n"); else server+=(--dns "$n"); fi
done

"${dockguard[@]}" certs init "$dir"          # refuses to overwrite an existing CA
"${dockguard[@]}" certs server "$dir" "${server[@]}"
for c in "${clients[@]}"; do
    "${dockguard[@]}" certs client "$dir" "$c" --out "$dir/$c"
done
