#!/usr/bin/env bash
# Fetches what the arm64 proof and vmlinux.h need from Debian 12's arm64
# archive, without installing anything or touching the system's apt state:
# the system's sources, read with arm64 as the only architecture into a
# private lists and cache directory under WORKDIR.
#
#   fetch.sh WORKDIR 'KERNEL-PACKAGE-REGEX'
#
# WORKDIR/kroot/boot: the newest kernel package matching the regex, its
# boot/ extracted (never installed); WORKDIR/sysroot: static busybox and the static
# libraries the loader links (libbpf, libelf, zlib). WORKDIR/kernel-package
# names the kernel package and version. Idempotent: a second run downloads
# nothing unless a newer kernel package appeared.
set -euo pipefail
work=$1 pattern=$2
mkdir -p "$work" && cd "$work"
mkdir -p apt/lists/partial apt/cache/archives/partial debs
apt_options=(-o "Dir::State::Lists=$PWD/apt/lists" -o "Dir::Cache=$PWD/apt/cache"
             -o Dir::State::status=/dev/null -o APT::Architecture=arm64 -o APT::Architectures=arm64)
apt-get "${apt_options[@]}" update -qq
kpkg=$(apt-cache "${apt_options[@]}" search --names-only "$pattern" | awk '{print $1}' | sort -V | tail -1)
[ -n "$kpkg" ] || { echo "fetch.sh: no arm64 package matches $pattern" >&2; exit 1; }
kversion=$(apt-cache "${apt_options[@]}" show "$kpkg" | sed -n 's/^Version: //p' | sort -V | tail -1)
want="$kpkg $kversion"
if [ ! -f kernel-package ] || [ "$(cat kernel-package)" != "$want" ] || [ ! -d sysroot ]; then
  rm -rf debs kroot sysroot kernel-package && mkdir debs
  # apt-get download runs as root here: _apt cannot write into WORKDIR.
  (cd debs && apt-get "${apt_options[@]}" -o APT::Sandbox::User=root download -q \
     "$kpkg" busybox-static libbpf-dev libelf-dev zlib1g-dev >/dev/null)
  # Only boot/ (Image, config): the guest loads no module.
  mkdir kroot && dpkg-deb --fsys-tarfile debs/"$kpkg"_*.deb | tar -x -C kroot ./boot
  for d in debs/busybox-static_*.deb debs/libbpf-dev_*.deb debs/libelf-dev_*.deb debs/zlib1g-dev_*.deb; do
    dpkg -x "$d" sysroot
  done
  echo "$want" > kernel-package
fi
cat kernel-package
