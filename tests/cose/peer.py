#!/usr/bin/python3
"""Independent peer for m2mguard's signed commands (docs/commands.md).

Debian python3-cryptography + python3-cbor2 and its OWN Sig_structure
(RFC 9052 4.4), written from the RFC, not from m2mguard's C code:

  peer.py sign --key PEM --kid KID --device NAME --seq N --command TEXT
               [--args TEXT] --iat S --exp S [--shuffle | --duplicate]
      prints the tagged COSE_Sign1 as hex. --shuffle writes the payload map
      keys out of order (not deterministic), --duplicate repeats key 2:
      both are validly signed, so only the CBOR rules can refuse them.
  peer.py verify --pub PEM --device NAME HEX
      verifies a COSE_Sign1 made by m2mguard and prints its fields; exits 1
      when the signature, the algorithm, the audience or the encoding is wrong.
"""
import argparse
import sys

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils

ES256, EDDSA = -7, -8


def sig_structure(protected: bytes, payload: bytes, aad: bytes = b"") -> bytes:
    """["Signature1", body_protected, external_aad, payload], by hand."""

    def head(major: int, n: int) -> bytes:
        if n < 24:
            return bytes([major << 5 | n])
        for ai, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
            if n < 1 << (8 * size):
                return bytes([major << 5 | ai]) + n.to_bytes(size, "big")
        raise ValueError("too long")

    def bstr(b: bytes) -> bytes:
        return head(2, len(b)) + b

    ctx = b"Signature1"
    return head(4, 4) + head(3, len(ctx)) + ctx + bstr(protected) + bstr(aad) + bstr(payload)


def sign(a):
    with open(a.key, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    alg = EDDSA if isinstance(key, ed25519.Ed25519PrivateKey) else ES256
    kid = a.kid.encode()
    protected = cbor2.dumps({1: alg, 4: kid})
    items = [(1, kid), (2, a.device), (3, a.command)]
    if a.args is not None:
        items.append((4, a.args))
    items += [(5, a.seq), (6, a.iat), (7, a.exp)]
    if a.shuffle or a.duplicate:
        # hand-built map: cbor2 would sort / merge keys
        if a.shuffle:
            items = items[1:] + items[:1]
        if a.duplicate:
            items.insert(2, (2, a.device))
        payload = bytes([0xA0 | len(items)]) + b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in items)
    else:
        payload = cbor2.dumps(dict(items), canonical=True)
    tbs = sig_structure(protected, payload)
    if alg == ES256:
        r, s = utils.decode_dss_signature(key.sign(tbs, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # RFC 9053 2.1: raw r||s
    else:
        sig = key.sign(tbs)
    print(cbor2.dumps(cbor2.CBORTag(18, [protected, {}, payload, sig])).hex())


def verify(a):
    with open(a.pub, "rb") as f:
        pub = serialization.load_pem_public_key(f.read())
    raw = bytes.fromhex(a.hex)
    msg = cbor2.loads(raw)
    if isinstance(msg, cbor2.CBORTag):
        if msg.tag != 18:
            sys.exit("peer: not tag 18")
        msg = msg.value
    protected, unprotected, payload, sig = msg
    hdr = cbor2.loads(protected)
    want = EDDSA if isinstance(pub, ed25519.Ed25519PublicKey) else ES256
    if hdr.get(1) != want:
        sys.exit("peer: alg %r is not the key's %r" % (hdr.get(1), want))
    tbs = sig_structure(protected, payload)
    try:
        if want == ES256:
            der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            pub.verify(der, tbs, ec.ECDSA(hashes.SHA256()))
        else:
            pub.verify(sig, tbs)
    except InvalidSignature:
        sys.exit("peer: bad signature")
    body = cbor2.loads(payload)
    if cbor2.dumps(body, canonical=True) != payload or cbor2.dumps(hdr, canonical=True) != protected:
        sys.exit("peer: not deterministic CBOR")
    if cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, payload, sig]), canonical=True) != raw:
        sys.exit("peer: envelope not deterministic")
    if body.get(1) != hdr.get(4):
        sys.exit("peer: payload kid differs from the header kid")
    if body.get(2) != a.device:
        sys.exit("peer: wrong audience %r" % body.get(2))
    print("peer ok alg=%s kid=%s command=%s seq=%d iat=%d exp=%d%s" % (
        "ES256" if want == ES256 else "EdDSA", body[1].decode(), body[3], body[5], body[6], body[7],
        (" args=" + body[4]) if 4 in body else ""))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="op", required=True)
    s = sub.add_parser("sign")
    for o in ("--key", "--kid", "--device", "--command"):
        s.add_argument(o, required=True)
    s.add_argument("--args")
    for o in ("--seq", "--iat", "--exp"):
        s.add_argument(o, type=int, required=True)
    s.add_argument("--shuffle", action="store_true")
    s.add_argument("--duplicate", action="store_true")
    v = sub.add_parser("verify")
    v.add_argument("--pub", required=True)
    v.add_argument("--device", required=True)
    v.add_argument("hex")
    a = p.parse_args()
    sign(a) if a.op == "sign" else verify(a)


if __name__ == "__main__":
    main()
