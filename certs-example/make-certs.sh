#!/usr/bin/env bash
# Make a CA, a server certificate and client certificates for dockguard.
# usage: make-certs.sh DIR CLIENT... [-- SERVER-NAME-OR-IP...]
set -euo pipefail
dir=${1:?usage: make-certs.sh DIR CLIENT... [-- NAME-OR-IP...]}; shift
clients=(); names=(localhost 127.0.0.1)
while [ $# -gt 0 ]; do
    if [ "$1" = "--" ]; then shift; names+=("$@"); break; fi
    clients+=("$1"); shift
done
mkdir -p "$dir"; cd "$dir"; umask 077
[ -e ca-key.pem ] && { echo "$dir/ca-key.pem exists: refusing to overwrite" >&2; exit 1; }
openssl ecparam -name prime256v1 -genkey -noout -out ca-key.pem
openssl req -x509 -new -key ca-key.pem -days 3650 -subj "/CN=dockguard CA" -out ca.pem \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
san=""
for n in "${names[@]}"; do
    if [[ $n =~ ^[0-9.]+$ || $n == *:* ]]; then san+="IP:$n,"; else san+="DNS:$n,"; fi
done
openssl ecparam -name prime256v1 -genkey -noout -out server-key.pem
openssl req -new -key server-key.pem -subj "/CN=dockguard" -out server.csr
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 825 -out server-cert.pem \
    -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' "${san%,}")
for c in "${clients[@]}"; do
    mkdir -p "$c"
    openssl ecparam -name prime256v1 -genkey -noout -out "$c/key.pem"
    openssl req -new -key "$c/key.pem" -subj "/CN=$c" -out "$c/client.csr"
    openssl x509 -req -in "$c/client.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 825 -out "$c/cert.pem" \
        -extfile <(printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n')
    cp ca.pem "$c/ca.pem"; rm "$c/client.csr"
    echo "client $c: DOCKER_HOST=tcp://${names[-1]}:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$PWD/$c"
done
rm -f server.csr
