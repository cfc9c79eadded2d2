#!/bin/sh
# Entrypoint wrapper for a merchant container in the QA kit: makes the container trust the
# webcollect-shim local CA ($WEBCOLLECT_SHIM_CA, mounted from the shim's `ca` volume), then
# runs the container's own command unchanged. Needs root (as the entrypoint of most images
# is); drop privileges in the command if your image does.
set -eu

ca="${WEBCOLLECT_SHIM_CA:?set WEBCOLLECT_SHIM_CA to the shim's ca.pem}"
# The shim writes its CA on first start; compose waits for it to be healthy, this is a fence.
tries=0
until [ -s "$ca" ]; do
  tries=$((tries + 1))
  if [ "$tries" -gt 60 ]; then
    echo "trust-ca.sh: $ca did not appear within 60 s" >&2
    exit 1
  fi
  sleep 1
done

if command -v update-ca-certificates >/dev/null 2>&1; then
  # Debian, Ubuntu, Alpine (package ca-certificates)
  mkdir -p /usr/local/share/ca-certificates
  cp "$ca" /usr/local/share/ca-certificates/webcollect-shim.crt
  update-ca-certificates >/dev/null
elif command -v update-ca-trust >/dev/null 2>&1; then
  # RHEL, CentOS, Rocky, Alma, Fedora, Amazon Linux
  cp "$ca" /etc/pki/ca-trust/source/anchors/webcollect-shim.pem
  update-ca-trust extract
else
  echo "trust-ca.sh: no update-ca-certificates or update-ca-trust in this image" >&2
  exit 1
fi
# Runtimes with their own trust stores: Node reads this at start; Python requests and pip use
# certifi's bundle unless told otherwise. (Java: see `webcollect-shim ca install-hint`.)
export NODE_EXTRA_CA_CERTS="$ca"
for bundle in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
  if [ -f "$bundle" ]; then
    export REQUESTS_CA_BUNDLE="$bundle"
    break
  fi
done
echo "trust-ca.sh: trusting the webcollect-shim local CA ($ca)" >&2

exec "$@"
