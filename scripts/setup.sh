#!/usr/bin/env bash
# setup.sh: installs the Debian packages kscope needs to build, run and test; silent when all are there.
set -euo pipefail

pkgs=(
  gcc libc6-dev make pkg-config binutils   # toolchain (host side and freestanding kernel)
  meson ninja-build python3                # build (python3 also sums test counts)
  qemu-system-x86 qemu-utils seabios       # the VMs (seabios: firmware of -M pc and q35)
  libcmocka-dev                            # host tests
  libjansson-dev                           # QMP (JSON)
  libelf-dev                               # symbols from ELF files
  libcapstone-dev                          # disassembly: magic, syscall and sysret sites
  libmicrohttpd-dev                        # the dashboard's HTTP server
  libxml2-utils                            # xmllint: the JUnit reports are checked against tests/data/junit.xsd
)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
for p in "${pkgs[@]}"; do
  installed "$p" || missing+=("$p")
done
# The dashboard's browser tests (tests/e2e): Chromium, run headless, needs none of its
# recommends; node and npm may come from elsewhere than Debian, so look for the commands.
web=()
installed chromium || web+=(chromium)
command -v node >/dev/null || web+=(nodejs)
command -v npm >/dev/null || web+=(npm)

if ((${#missing[@]} + ${#web[@]} > 0)); then
  if [[ $(id -u) != 0 ]]; then
    echo "setup: missing packages: ${missing[*]} ${web[*]}; install them or run as root" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]} ${web[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  ((${#missing[@]} == 0)) || apt-get install -y -qq "${missing[@]}" >/dev/null
  ((${#web[@]} == 0)) || apt-get install -y -qq --no-install-recommends "${web[@]}" >/dev/null
fi

# The browser tests' node modules, exactly as package-lock.json pins them.
e2e=$(dirname "$0")/../tests/e2e
if [[ ! -f $e2e/node_modules/.package-lock.json || $e2e/package-lock.json -nt $e2e/node_modules/.package-lock.json ]]; then
  (cd "$e2e" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
    echo "setup: npm ci in tests/e2e failed: the dashboard's browser tests will be skipped" >&2
fi
