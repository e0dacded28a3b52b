#!/usr/bin/env bash
# Builds the finwait image FROM scratch with podman (as root): the binary,
# exactly the shared libraries ldd names for it, and the dynamic loader.
#   deploy/build-image.sh [BINARY] [TAG]
# Defaults: .build/release/finwait (make build) and localhost/finwait:VERSION.
# The build context is laid out in .build/image/ (rebuilt every time).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-.build/release/finwait}
[ -x "$bin" ] || { echo "build-image: no binary at $bin (run make build)" >&2; exit 1; }
version=$("$bin" --version)
tag=${2:-localhost/finwait:$version}

ctx=.build/image
rm -rf "$ctx"
mkdir -p "$ctx/rootfs/usr/local/bin"
install -m 0755 "$bin" "$ctx/rootfs/usr/local/bin/finwait"

# Every library at the path ldd resolved it to (the loader finds them there:
# Debian's loader searches /lib/x86_64-linux-gnu without an ld.so.cache),
# symlinks followed, plus the loader at the path in the binary's PT_INTERP.
libs=$(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
[ -n "$libs" ] || { echo "build-image: ldd named no libraries for $bin" >&2; exit 1; }
if ldd "$bin" | grep -q 'not found'; then
  echo "build-image: ldd could not resolve every library:" >&2; ldd "$bin" >&2; exit 1
fi
for lib in $libs; do
  mkdir -p "$ctx/rootfs$(dirname "$lib")"
  cp -L "$lib" "$ctx/rootfs$lib"
done
interp=$(readelf -l "$bin" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
[ -e "$ctx/rootfs$interp" ] || { echo "build-image: loader $interp not copied" >&2; exit 1; }
# Mount points for the host paths finwait reads (BTF, cgroups, pod logs).
mkdir -p "$ctx/rootfs/sys/kernel/btf" "$ctx/rootfs/sys/fs/cgroup" "$ctx/rootfs/var/log/pods" "$ctx/rootfs/proc"
cp deploy/Containerfile "$ctx/Containerfile"

echo "build-image: $(echo $libs | wc -w) files from ldd:" $libs
old=$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
podman build --runtime runc -t "$tag" -f "$ctx/Containerfile" "$ctx"
# The image this tag named before is left untagged: remove it (only it).
new=$(podman image inspect --format '{{.Id}}' "$tag")
if [ -n "$old" ] && [ "$old" != "$new" ]; then podman rmi "$old" >/dev/null 2>&1 || true; fi
podman image inspect --format '{{.Size}}' "$tag" | awk -v t="$tag" '{ printf "build-image: %s is %d bytes (%.1f MB)\n", t, $1, $1 / 1e6 }'
