#!/bin/sh
# The part of the official nginx image's entrypoint that deploy/compose.yaml relies on: before
# running nginx, render $NGINX_ENVSUBST_TEMPLATE_DIR/*.template into
# $NGINX_ENVSUBST_OUTPUT_DIR (name less .template), substituting only variables that are set.
set -eu
if [ "${1:-}" = nginx ] && [ -d "${NGINX_ENVSUBST_TEMPLATE_DIR:-}" ]; then
  defined=$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/${\1}/p' | tr '\n' ' ')
  for template in "$NGINX_ENVSUBST_TEMPLATE_DIR"/*.template; do
    output="$NGINX_ENVSUBST_OUTPUT_DIR/$(basename "$template" .template)"
    envsubst "$defined" < "$template" > "$output"
  done
fi
exec "$@"
