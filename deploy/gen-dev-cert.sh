#!/usr/bin/env bash
# Self-signed certificate for development and tests only (production: Let's Encrypt, see the
# README). Usage: deploy/gen-dev-cert.sh [OUT_DIR] [NAME]   (default: deploy/secrets localhost)
# Writes OUT_DIR/tls.crt and OUT_DIR/tls.key (EC P-256, 30 days, SAN NAME, localhost, 127.0.0.1).
set -euo pipefail
out_dir="${1:-$(dirname "$0")/secrets}"
name="${2:-localhost}"
mkdir -p "$out_dir"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj "/CN=$name" \
  -addext "subjectAltName=DNS:$name,DNS:localhost,IP:127.0.0.1" \
  -addext "keyUsage=critical,digitalSignature" \
  -addext "extendedKeyUsage=serverAuth" \
  -keyout "$out_dir/tls.key" -out "$out_dir/tls.crt" 2>/dev/null
chmod 0644 "$out_dir/tls.crt"
echo "wrote $out_dir/tls.crt and $out_dir/tls.key (self-signed, for development only)"
