#!/usr/bin/env bash
# Debian's Chromium, for the dashboard's browser test and `make screenshots`.
#   chromium.sh ensure   install it when missing (root with apt-get: `apt-get update` once, then
#                        `apt-get install -y chromium`); prints the browser's path, or why there is none
#                        (exit 1). Never downloads a browser build of its own.
# Environment: MODELYARD_CHROMIUM (a browser to use instead of the one on the PATH).
source "$(dirname "$0")/common.sh"

find_chromium() {
  if [[ -n ${MODELYARD_CHROMIUM:-} && -x ${MODELYARD_CHROMIUM} ]]; then echo "$MODELYARD_CHROMIUM"; return 0; fi
  command -v chromium || command -v chromium-browser
}

ensure() {
  local found
  if found=$(find_chromium); then echo "$found"; return 0; fi
  command -v apt-get >/dev/null 2>&1 || { log "Chromium is missing and there is no apt-get to install it: install a Chromium and set MODELYARD_CHROMIUM"; exit 1; }
  [[ $(id -u) -eq 0 ]] || { log "Chromium is missing; installing it needs root: sudo apt-get install -y chromium"; exit 1; }
  log "installing Debian's chromium package (first run only)"
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >&2; then
    log "apt-get could not install chromium"; exit 1
  fi
  find_chromium || { log "chromium was installed but is not on the PATH"; exit 1; }
}

case ${1:-} in
  ensure) ensure ;;
  *) echo "usage: $0 ensure" >&2; exit 2 ;;
esac
