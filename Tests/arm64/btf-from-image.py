#!/usr/bin/env python3
"""Copies the kernel's BTF out of an arm64 kernel Image (Debian's vmlinuz is
the uncompressed Image): the .BTF section is loaded as-is, so the blob starts
with the BTF header (magic 0xeb9f, version 1, 24-byte header) and its length
is in that header. Exactly one such header must be found.

    btf-from-image.py IMAGE OUT.btf
"""
import struct
import sys

HEADER = b"\x9f\xeb\x01\x00\x18\x00\x00\x00"  # magic, version 1, flags 0, hdr_len 24


def main(image, out):
    data = open(image, "rb").read()
    if data[:2] == b"\x1f\x8b":
        sys.exit(f"{image}: gzip-compressed; decompress it first")
    found = []
    at = data.find(HEADER)
    while at >= 0:
        type_off, type_len, str_off, str_len = struct.unpack_from("<4I", data, at + 8)
        end = at + 24 + str_off + str_len
        # The string section follows the types; a false match will not say so.
        if type_off == 0 and str_off == type_len and end <= len(data):
            found.append((at, end))
        at = data.find(HEADER, at + 1)
    if len(found) != 1:
        sys.exit(f"{image}: {len(found)} BTF headers found, expected 1")
    start, end = found[0]
    with open(out, "wb") as f:
        f.write(data[start:end])


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
