#!/usr/bin/env bash
# The test command: installs what it needs (a Python venv with moto and cfn-lint; Chromium,
# ChromeDriver and axe-core for the browser tests), starts moto's server on loopback for the AWS
# adapter tests, runs every check, and stops moto afterwards.
# Usage: scripts/test.sh            everything
#        scripts/test.sh --quick    skip clippy and the release build
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
quick=${1:-}

step() { printf '\n==> %s\n' "$*"; }

step "Python tools (.venv: moto, cfn-lint)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --disable-pip-version-check -q -r requirements-dev.txt

step "Browser (chromium, chromium-driver, axe-core)"
# The browser tests drive a real headless Chromium through ChromeDriver (Debian packages) and
# check pages with axe-core (npm, pinned exactly in tests/browser-tools, installed into .tools/npm).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  if [ "$(id -u)" = 0 ]; then
    as_root=
  elif command -v sudo >/dev/null 2>&1; then
    as_root=sudo
  else
    echo "the browser tests need Chromium and ChromeDriver (/usr/bin/chromium, /usr/bin/chromedriver):"
    echo "run this as root, or install sudo, or install them yourself:"
    echo "  apt-get install -y --no-install-recommends chromium chromium-driver fonts-liberation"
    exit 1
  fi
  $as_root apt-get update
  # fonts-liberation (a recommendation of chromium's) gives pages the usual Arial/Times metrics.
  $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    chromium chromium-driver fonts-liberation
fi
command -v npm >/dev/null 2>&1 || { echo "the browser tests need Node.js with npm (for axe-core)"; exit 1; }
axe_version=$(node -p "require('./tests/browser-tools/package.json').dependencies['axe-core']")
axe_js="$root/.tools/npm/node_modules/axe-core/axe.min.js"
installed_axe=
if [ -f "$axe_js" ]; then
  installed_axe=$(node -p "require('./.tools/npm/node_modules/axe-core/package.json').version" 2>/dev/null || true)
fi
if [ "$installed_axe" != "$axe_version" ]; then
  rm -rf .tools/npm
  mkdir -p .tools/npm
  cp tests/browser-tools/package.json tests/browser-tools/package-lock.json .tools/npm/
  npm ci --prefix .tools/npm --no-audit --no-fund
fi
test -f "$axe_js" || { echo "axe-core $axe_version did not install ($axe_js is missing)"; exit 1; }
export CHECKOUT_AXE_JS="$axe_js"
export CHECKOUT_CHROMIUM=/usr/bin/chromium
export CHECKOUT_CHROMEDRIVER=/usr/bin/chromedriver
echo "$(/usr/bin/chromium --version 2>/dev/null | head -n 1); $(/usr/bin/chromedriver --version | head -n 1); axe-core $axe_version"

step "Starting moto on loopback"
mkdir -p target
moto_pid=
cleanup() { if [ -n "$moto_pid" ]; then kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT
# moto with its transaction backup taken once per table and its DynamoDB writes one at a time
# (see the script); `MOTO_SERIAL_WRITES=0` leaves the writes as moto ships them.
start_moto() {
  cleanup
  port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  env "$@" .venv/bin/python scripts/moto_server.py -H 127.0.0.1 -p "$port" >>target/moto.log 2>&1 &
  moto_pid=$!
  moto_up() { .venv/bin/python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null; }
  for _ in $(seq 1 150); do
    if moto_up; then break; fi
    sleep 0.2
  done
  moto_up || { echo "moto did not start"; cat target/moto.log; exit 1; }
  export MOTO_ENDPOINT="http://127.0.0.1:$port"
  echo "moto at $MOTO_ENDPOINT"
}
start_moto

step "Formatting"
if cargo fmt --version >/dev/null 2>&1; then
  cargo fmt --all -- --check
else
  echo "rustfmt is not installed on this machine; skipping the format check"
fi

if [ "$quick" != "--quick" ]; then
  step "Clippy (warnings are errors)"
  if cargo clippy --version >/dev/null 2>&1; then
    cargo clippy --workspace --all-targets -- -D warnings
  else
    echo "clippy is not installed on this machine; skipping lint"
  fi
fi

step "Tests (unit, contract against memory and moto, end to end with the simulator)"
cargo test --workspace --no-fail-fast

step "README run command (cargo run -p devstack): starts, takes a payment, settles it"
.venv/bin/python scripts/devstack-smoke.py

step "Template lint (cfn-lint)"
.venv/bin/cfn-lint template.yaml

if [ "$quick" != "--quick" ]; then
  step "Release build of the Lambda functions (size-tuned profile)"
  "$root/scripts/release-build.sh"
fi

step "Chaos and crash suite, short form (RELIABILITY.md): faults, SIGKILLs on moto, ground truth"
# The workspace's bins (as the tests built them): `-p devstack` alone would rebuild dependencies
# with other features. The two parts run side by side (the crash part is paced for moto).
cargo build --workspace --bins
# A fresh moto for the crash part, its writes as moto ships them: serialised writes wait behind
# each other's table copies, and under the crash part's load callbacks then outlive the plan's
# queue visibility (dead letters). The suite's own checks do not rely on moto's atomicity.
start_moto MOTO_SERIAL_WRITES=0
mkdir -p target/chaos
target/debug/chaos --form short --part memory --out target/chaos >target/chaos/memory.log 2>&1 &
chaos_memory=$!
crash_status=0
target/debug/chaos --form short --part crash --out target/chaos || crash_status=$?
memory_status=0
wait "$chaos_memory" || memory_status=$?
cat target/chaos/memory.log
if [ "$memory_status" != 0 ] || [ "$crash_status" != 0 ]; then
  echo "chaos suite failed (memory part: exit $memory_status, crash part: exit $crash_status); reports in target/chaos"
  exit 1
fi

step "All checks passed"
