#!/usr/bin/env bash
# Installs and starts what the node and its tests need on a fresh Debian 12 machine, as root:
# Debian's docker.io, systemd (for systemd-analyze only) and docker-compose (dockerd started by hand when none answers: there is no systemd), redis-server (the tests
# start their own instances), util-linux's unshare/setpriv (used by the tests; part of the base system), bun at a pinned version, the project's dependencies from the lockfile, and the
# example container image. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
BUN_VERSION=1.4.5
export DEBIAN_FRONTEND=noninteractive

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v redis-server >/dev/null || need+=(redis-server)
# Docker needs apparmor_parser where the kernel has AppArmor enabled (not on every machine of this kind).
if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = "Y" ] && ! command -v apparmor_parser >/dev/null; then
  need+=(apparmor)
fi
command -v curl >/dev/null || need+=(curl ca-certificates)
command -v git >/dev/null || need+=(git)
# The release tests: systemd-analyze verifies the unit (Debian's systemd package; it does not replace the init
# system, that is systemd-sysv), docker-compose (v1, Debian's) validates and starts deploy/docker-compose.yaml.
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v script >/dev/null || need+=(bsdutils)
# Headless browser for the dashboard test (test/e2e/dashboard.test.ts drives it with playwright-core).
command -v chromium >/dev/null || need+=(chromium fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v bun >/dev/null || [ "$(bun --version)" != "$BUN_VERSION" ]; then
  # Node.js and npm come with this kind of machine; bun is installed from the npm registry by package name.
  command -v npm >/dev/null || { apt-get update -qq; apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
  npm install -g --silent "bun@$BUN_VERSION" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 150); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
  docker info >/dev/null 2>&1 || { tail -50 /var/log/dockerd.log; echo "dockerd did not start" >&2; exit 1; }
fi

bun install --frozen-lockfile
if [ -x examples/containers/build.sh ]; then bash examples/containers/build.sh; fi
echo "setup complete: bun $(bun --version), $(docker version --format 'docker {{.Server.Version}}'), $(redis-server --version | cut -d' ' -f3)"
