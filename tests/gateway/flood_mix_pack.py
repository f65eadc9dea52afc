#!/usr/bin/env python3
"""Builds the legitimate traffic of tests/gateway/flood_mix.sh in one process:
secured command packets (ETSI TS 102 225 5.1.1, MO: the backend's TAR 4D4700)
of registered devices, SPI 16 00 (cryptographic checksum, ciphering, counter
higher, no PoR), KIc = KID = 12 (AES, key version 1): AES-CMAC (RFC 4493) over
the header and the data, its 8 leftmost octets as the CC, then AES-CBC with a
zero IV from CNTR to the end (TS 102 225 5.1.2, TS 31.115). The primitives are
the `cryptography` package's (OpenSSL); flood_mix.sh checks the first packet
octet for octet against `m2mguard sms pack`, so this file cannot drift from
the product's encoder unnoticed.

usage: flood_mix_pack.py PER_DEVICE MSISDN:KIC_HEX:KID_HEX... > lines
prints, counters 1..PER_DEVICE, each counter for every device in turn:
  MSISDN 027000PACKET_HEX
"""
import sys

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

TAR_BACKEND = bytes.fromhex("4d4700")
SPI = bytes.fromhex("1600")
KIC = KID = 0x12
CC_LEN = 8
CHL = 13 + CC_LEN  # SPI 2, KIc 1, KID 1, TAR 3, CNTR 5, PCNTR 1 + the CC


def pack(kic: bytes, kid: bytes, cntr: int, data: bytes) -> bytes:
    region = 6 + CC_LEN + len(data)  # CNTR .. end
    pad = (16 - region % 16) % 16
    total = 2 + 1 + 2 + 1 + 1 + 3 + region + pad
    head = (total - 2).to_bytes(2, "big") + bytes([CHL]) + SPI + bytes([KIC, KID]) + TAR_BACKEND
    cntr_pcntr = cntr.to_bytes(5, "big") + bytes([pad])
    rest = data + bytes(pad)
    c = cmac.CMAC(algorithms.AES(kid))
    c.update(head + cntr_pcntr + rest)
    cc = c.finalize()[:CC_LEN]
    enc = Cipher(algorithms.AES(kic), modes.CBC(bytes(16))).encryptor()
    secured = enc.update(cntr_pcntr + cc + rest) + enc.finalize()
    return head + secured


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    per = int(sys.argv[1])
    if not 1 <= per <= 100000:
        print("PER_DEVICE: 1..100000", file=sys.stderr)
        return 2
    devs = []
    for a in sys.argv[2:]:
        msisdn, kic, kid = a.split(":")
        devs.append((msisdn, bytes.fromhex(kic), bytes.fromhex(kid)))
    out = sys.stdout
    for k in range(1, per + 1):
        for i, (msisdn, kic, kid) in enumerate(devs, 1):
            text = ("legit-%03d-%04d" % (i, k)).encode()
            out.write("%s 027000%s\n" % (msisdn, pack(kic, kid, k, text).hex()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
