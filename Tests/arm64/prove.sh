#!/usr/bin/env bash
# The arm64 proof: boots Debian 12's arm64 kernel under qemu-system-aarch64
# (software emulation) with an initramfs of static arm64 busybox, fwprove and
# fwdrive; fwprove loads the arm64 BPF object, drives a shutdown(SHUT_WR)
# and a close() connection through FIN_WAIT2 and checks their records.
#
#   prove.sh WORKDIR FWPROVE FWDRIVE RESULTS.xml
#
# WORKDIR is fetch.sh's. Prints one PASS/FAIL line per check (the guest's,
# and the host's check that the running kernel's /sys/kernel/btf/vmlinux is
# the BTF bpf/vmlinux/arm64 was made from the image of), writes them as
# JUnit XML to RESULTS.xml and exits 1 if any failed (125: the guest never
# reported).
set -euo pipefail
work=$1 fwprove=$2 fwdrive=$3 results=$4
here=$(cd "$(dirname "$0")" && pwd)
read -r kpkg kversion < "$work/kernel-package"
kver=${kpkg#linux-image-}
image=$work/kroot/boot/vmlinuz-$kver

rm -rf "$work/initramfs" && mkdir -p "$work/initramfs"/{bin,proc,sys,dev,tmp}
cp "$work/sysroot/bin/busybox" "$work/initramfs/bin/busybox"
install -m 0755 "$here/init" "$work/initramfs/init"
install -m 0755 "$fwprove" "$work/initramfs/fwprove"
install -m 0755 "$fwdrive" "$work/initramfs/fwdrive"
echo 40100 > "$work/initramfs/port"
(cd "$work/initramfs" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initramfs.cpio.gz"

"$here/btf-from-image.py" "$image" "$work/image.btf"
image_btf=$(sha256sum "$work/image.btf" | cut -d' ' -f1)

console=$work/console-$kver.log
rm -f "$console"
start=$(date +%s)
# One vCPU: TCG is heavy and the machine is shared. pauth-impdef: QEMU's
# own pointer-authentication hash, much cheaper to emulate than QARMA.
timeout -k 10 600 qemu-system-aarch64 -M virt -cpu max,pauth-impdef=on -smp 1 -m 1024 \
  -kernel "$image" -initrd "$work/initramfs.cpio.gz" \
  -append "console=ttyAMA0 panic=-1 quiet loglevel=4" \
  -display none -monitor none -serial "file:$console" -no-reboot -nic none || true
log=$(tr -d '\r' < "$console")
printf '%s\n' "$log"
echo "prove.sh: guest ran $(( $(date +%s) - start )) s ($kpkg $kversion)"

code=$(sed -n 's/^=== GUEST EXIT CODE: \([0-9]*\).*/\1/p' <<< "$log" | tail -1)
guest_btf=$(sed -n 's/^=== GUEST BTF SHA256: \([0-9a-f]*\).*/\1/p' <<< "$log" | tail -1)
checks=$(grep -E '^(PASS|FAIL) [^ ]+: ' <<< "$log" || true)
if [ -n "$guest_btf" ] && [ "$guest_btf" = "$image_btf" ]; then
  line="PASS btf: /sys/kernel/btf/vmlinux is the BTF read from $kpkg's image ($image_btf)"
else
  line="FAIL btf: /sys/kernel/btf/vmlinux ${guest_btf:-unread}, the image's $image_btf"
fi
echo "$line"
checks=$(printf '%s\n%s\n' "$checks" "$line" | sed '/^$/d')
[ -n "$code" ] || checks=$(printf '%s\nFAIL guest: no exit code on the console (%s)\n' "$checks" "$console")

mkdir -p "$(dirname "$results")"
printf '%s\n' "$checks" > "$work/checks.txt"
python3 - "$results" "$kpkg $kversion" "$work/checks.txt" <<'PY'
import sys
import xml.etree.ElementTree as ET

out, kernel, checks = sys.argv[1], sys.argv[2], sys.argv[3]
suite = ET.Element("testsuite", name="arm64", hostname=kernel)
failures = 0
for line in open(checks).read().splitlines():
    status, rest = line.split(" ", 1)
    name, detail = rest.split(": ", 1)
    case = ET.SubElement(suite, "testcase", classname="arm64", name=name)
    if status == "FAIL":
        failures += 1
        ET.SubElement(case, "failure", message=detail)
suite.set("tests", str(len(suite)))
suite.set("failures", str(failures))
ET.ElementTree(suite).write(out, encoding="utf-8", xml_declaration=True)
PY
failed=$(grep -c '^FAIL ' <<< "$checks" || true)
passed=$(grep -c '^PASS ' <<< "$checks" || true)
echo "arm64: $passed passed, $failed failed"
[ -n "$code" ] || exit 125
[ "$failed" -eq 0 ] && [ "$code" -eq 0 ]
