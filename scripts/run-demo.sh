#!/usr/bin/env bash
# run-demo.sh: boots a kt_ kernel under QEMU (microvm, TCG), shows its KTAP, and explains its exit status.
# Usage: run-demo.sh KERNEL [extra QEMU arguments, e.g. -smp 4 -append "kt.filter=mm*"]
set -uo pipefail
kernel=${1:?usage: run-demo.sh KERNEL [QEMU ARGS...]}
shift
qemu=${QEMU:-qemu-system-x86_64}
[[ -f $kernel ]] || { echo "run-demo: no kernel at $kernel" >&2; exit 2; }

cmd=("$qemu" -M microvm -accel tcg -m 128M -nodefaults -nographic -no-reboot
     -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel "$kernel" "$@")
echo "+ ${cmd[*]}" >&2
# QEMU is the only child; timeout kills it if the kernel hangs.
timeout -k 5 300 "${cmd[@]}" </dev/null
rc=$?
case $rc in
  33) echo "run-demo: all selected tests passed (exit status 33)"; exit 0 ;;
  35) echo "run-demo: some tests failed (exit status 35)"; exit 1 ;;
  37) echo "run-demo: the kernel crashed (exit status 37)"; exit 1 ;;
  124|137) echo "run-demo: no exit after 300 s: the kernel hung" >&2; exit 1 ;;
  *) echo "run-demo: QEMU exited with status $rc (not a kt_ exit code: QEMU failed or the guest reset)" >&2; exit 2 ;;
esac
