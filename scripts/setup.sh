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

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) != 0 ]]; then
  echo "setup: missing packages: ${missing[*]}; install them or run as root" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
