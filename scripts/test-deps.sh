#!/usr/bin/env bash
# Makes sure the programs the test suite runs are installed: nats-server (integration and chaos),
# chromium (the report's rendering test) and promtool (Debian package prometheus: the metrics
# exposition check). Installs the missing ones with apt-get when it runs as root on a machine with
# apt; otherwise exits 1 and prints exactly the command to run. Run by `npm run pretest`.
#
# A program counts as present when it is on PATH or in one of $TEST_DEPS_SBIN (default
# "/usr/sbin /usr/local/sbin": Debian installs nats-server to /usr/sbin, which not every user has
# on PATH; the launcher in tools/natsd looks there too).
set -euo pipefail

# program:package, in install order.
needed=("nats-server:nats-server" "chromium:chromium" "promtool:prometheus")
read -r -a sbin <<<"${TEST_DEPS_SBIN-/usr/sbin /usr/local/sbin}"

have() {
  command -v "$1" >/dev/null 2>&1 && return 0
  local dir
  for dir in "${sbin[@]}"; do [ -x "$dir/$1" ] && return 0; done
  return 1
}

missing=()
for entry in "${needed[@]}"; do
  have "${entry%%:*}" || missing+=("${entry#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

install="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "npm test needs ${missing[*]}, not found on this machine. Install with:" >&2
  echo "  sudo sh -c '$install'" >&2
  exit 1
fi
echo "test-deps: installing ${missing[*]}: $install" >&2
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
