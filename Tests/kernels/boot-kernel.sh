#!/usr/bin/env bash
# Runs a command as root on another kernel: boots a Debian kernel package
# under QEMU's software emulation (TCG: /dev/kvm here cannot boot a stock
# kernel), with the host's root filesystem mounted read-only over 9p.
#
#   boot-kernel.sh [--share DIR] [--suite SUITE] WORKDIR 'PACKAGE-REGEX' COMMAND...
#
# The newest kernel package matching PACKAGE-REGEX is fetched with
# `apt-get download` into WORKDIR (never installed). --suite SUITE (e.g.
# bullseye): from that suite of the system's Debian mirror, through a private
# sources list and lists directory under WORKDIR; the system's apt
# configuration is left alone. Prints the guest console
# and exits with the command's exit code (125 if the guest never reported one).
# --share DIR: the host directory DIR (created if missing) is also shared
# read-write over 9p and mounted at the same path in the guest, for what the
# command must hand back (e.g. test results); everything else the guest
# writes is lost with its tmpfs.
set -euo pipefail
share=
suite=
while [ $# -gt 0 ]; do
  case $1 in
    --share) mkdir -p "$2"; share=$(cd "$2" && pwd); shift 2 ;;
    --suite) suite=$2; shift 2 ;;
    *) break ;;
  esac
done
work=$1 pattern=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"
cd "$work"

apt_options=()
if [ -n "$suite" ]; then
  # The same mirror the system uses (deb822 or one-line format).
  mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
  [ -n "$mirror" ] || { echo "boot-kernel: no Debian mirror in the system's apt sources" >&2; exit 125; }
  mkdir -p "apt-$suite/lists/partial" "apt-$suite/cache/archives/partial"
  echo "deb $mirror $suite main" > "apt-$suite/sources.list"
  apt_options=(-o "Dir::Etc::sourcelist=$PWD/apt-$suite/sources.list" -o Dir::Etc::sourceparts=/nonexistent
               -o "Dir::State::Lists=$PWD/apt-$suite/lists" -o "Dir::Cache=$PWD/apt-$suite/cache")
  apt-get "${apt_options[@]}" update -qq
fi
pkg=$(apt-cache "${apt_options[@]}" search --names-only "$pattern" | awk '{print $1}' | sort -V | tail -1)
[ -n "$pkg" ] || { echo "boot-kernel: no package matches $pattern (apt-get update?)" >&2; exit 125; }
kver=${pkg#linux-image-}
if [ ! -d "kroot-$kver" ]; then
  rm -f "$pkg"_*.deb
  apt-get "${apt_options[@]}" download -q "$pkg" >/dev/null
  dpkg -x "$pkg"_*.deb "kroot-$kver.tmp"
  depmod -b "kroot-$kver.tmp" "$kver"
  mv "kroot-$kver.tmp" "kroot-$kver"
fi

# initramfs: static busybox, the modules 9p and overlay need, /init, /cmd.
rm -rf initramfs && mkdir -p initramfs/bin initramfs/mods initramfs/proc initramfs/sys initramfs/dev
cp /bin/busybox initramfs/bin/busybox
install -m 0755 "$here/init" initramfs/init
printf '%q ' "$@" > initramfs/cmd
[ -z "$share" ] || printf '%s\n' "$share" > initramfs/share
# tcp_diag: sock_diag for TCP, which reconciliation and snapshots use; veth:
# the doctor's tests join namespaces with veth pairs. The guest cannot
# autoload them (its modules are not under /lib/modules).
for m in virtio_pci 9p 9pnet_virtio overlay tcp_diag veth; do
  modprobe -d "kroot-$kver" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' | while read -r f; do
  cp "$f" initramfs/mods/
  basename "$f" >> initramfs/modules.list
done
(cd initramfs && find . | cpio -o -H newc --quiet | gzip -1) > initramfs.cpio.gz

share_args=()
if [ -n "$share" ]; then
  share_args=(-fsdev "local,id=fs1,path=${share//,/,,},security_model=none,multidevs=remap"
              -device virtio-9p-pci,fsdev=fs1,mount_tag=hostshare)
fi
console=console-$kver.log
rm -f "$console"
timeout -k 10 900 qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 2048 \
  -kernel "kroot-$kver/boot/vmlinuz-$kver" -initrd initramfs.cpio.gz \
  -append "console=ttyS0 panic=-1 quiet loglevel=4" \
  -fsdev local,id=fs0,path=/,readonly=on,security_model=none,multidevs=remap \
  -device virtio-9p-pci,fsdev=fs0,mount_tag=hostroot \
  "${share_args[@]}" \
  -display none -monitor none -serial "file:$console" -no-reboot -nic none || true
tr -d '\r' < "$console"
code=$(tr -d '\r' < "$console" | sed -n 's/^=== GUEST EXIT CODE: \([0-9]*\).*/\1/p' | tail -1)
exit "${code:-125}"
