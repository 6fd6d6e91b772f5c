#!/usr/bin/env python3
"""Verifies "everything about me" (GET /citizen/v1/export) offline, without Bru.

Written from the specifications only (docs/export.md): nothing here comes
from Bru's code. The standard library (hashlib, base64, json) does the
hashing; one PyPI package, `cryptography`, checks Ed25519 signatures.

  1. leaf bytes = RFC 8785 canonical JSON of each transfer's `record`;
     leaf hash = SHA-256(0x00 || leaf bytes), compared with `leaf_hash`;
  2. the RFC 9162 (2.1.3.2) inclusion proof `audit_path` of `leaf_index` in
     a tree of `checkpoint_size` leaves must lead to the checkpoint's root;
  3. the checkpoint is a C2SP signed note (origin, size, base64 root):
     its Ed25519 signature by `verifier_keys.log`, key id
     SHA-256(name || 0x0A || 0x01 || key)[:4], must verify over the note text;
  4. each witness cosignature line (C2SP tlog-cosignature v1, type 0x04)
     by a key in `verifier_keys.witnesses` must verify over
     "cosignature/v1\\ntime <t>\\n" + the note text.

usage: verify_export.py EXPORT.json [--log-key VKEY] [--min-cosignatures N]

`--log-key` pins the log's key you got elsewhere (e.g. /audit/v1/checkpoint/key),
instead of trusting the one inside the file. Exit 0 and "OK ..." when
everything verifies; 1 and "FAIL: ..." otherwise.
"""

import base64
import hashlib
import json
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class VerifyError(Exception):
    pass


# ---- RFC 8785 (JSON Canonicalization Scheme) for what records hold -----------

def canonical(value):
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        if abs(value) > 2**53 - 1:
            raise VerifyError(f"integer {value} is outside I-JSON's exact range")
        return str(value)
    if isinstance(value, float):
        raise VerifyError("records hold no floating-point numbers")
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, dict):
        # RFC 8785 3.2.3: members sorted by the UTF-16 code units of their names.
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(quote(k) + ":" + canonical(value[k]) for k in keys) + "}"
    raise VerifyError(f"unexpected JSON value {value!r}")


ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def quote(s):
    out = ['"']
    for ch in s:
        if ch in ESCAPES:
            out.append(ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# ---- RFC 9162 ---------------------------------------------------------------

def sha256(data):
    return hashlib.sha256(data).digest()


def leaf_hash(data):
    return sha256(b"\x00" + data)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def root_from_inclusion(index, size, leaf, path):
    """RFC 9162 2.1.3.2: the root the audit path leads to."""
    if index >= size:
        raise VerifyError(f"leaf {index} is not below the tree size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise VerifyError(f"leaf {index}: the audit path is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerifyError(f"leaf {index}: the audit path is too short")
    return r


# ---- C2SP signed note, tlog-checkpoint, tlog-cosignature --------------------

def parse_vkey(vkey, sig_type):
    """`name+hexkeyid+base64(type || key)`; checks the key id."""
    name, key_id, key = vkey.strip().split("+", 2)
    typed = base64.b64decode(key, validate=True)
    if len(typed) != 33 or typed[0] != sig_type:
        raise VerifyError(f"verifier key {name}: not an Ed25519 key of type {sig_type:#04x}")
    public = typed[1:]
    if sha256(name.encode() + b"\n" + bytes([sig_type]) + public)[:4].hex() != key_id:
        raise VerifyError(f"verifier key {name}: its key id does not match its key")
    return name, public


def parse_note(note):
    split = note.rfind("\n\n")
    if split < 0:
        raise VerifyError("checkpoint: no blank line before the signatures")
    text, sigs = note[: split + 1], note[split + 2:]
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise VerifyError("checkpoint: the note text is not origin, size, root")
    origin, size, root = lines[:3]
    if not size.isdigit() or (len(size) > 1 and size[0] == "0"):
        raise VerifyError("checkpoint: the size is not a decimal number")
    root = base64.b64decode(root, validate=True)
    if len(root) != 32:
        raise VerifyError("checkpoint: the root is not 32 bytes")
    signatures = []
    for line in sigs.rstrip("\n").split("\n"):
        if not line.startswith("\u2014 "):
            raise VerifyError("checkpoint: a signature line does not start with an em dash")
        name, blob = line[2:].split(" ", 1)
        signatures.append((name, base64.b64decode(blob, validate=True)))
    return {"origin": origin, "size": int(size), "root": root, "text": text, "signatures": signatures}


def ed25519_ok(public, signature, message):
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
        return True
    except InvalidSignature:
        return False


def check_log_signature(cp, vkey):
    name, public = parse_vkey(vkey, 0x01)
    if name != cp["origin"]:
        raise VerifyError(f"the log key is named {name}, the checkpoint's origin is {cp['origin']}")
    key_id = sha256(name.encode() + b"\n\x01" + public)[:4]
    blobs = [b for (n, b) in cp["signatures"] if n == name and b[:4] == key_id]
    if not blobs:
        raise VerifyError("checkpoint: no signature by the log's key")
    if not any(ed25519_ok(public, b[4:], cp["text"].encode()) for b in blobs):
        raise VerifyError("checkpoint: the log's signature does not verify")


def good_cosignatures(cp, vkeys):
    """How many witnesses in `vkeys` cosigned this checkpoint (each verified)."""
    good = 0
    for vkey in vkeys:
        name, public = parse_vkey(vkey, 0x04)
        key_id = sha256(name.encode() + b"\n\x04" + public)[:4]
        for n, blob in cp["signatures"]:
            if n != name or blob[:4] != key_id:
                continue
            if len(blob) != 4 + 8 + 64:
                raise VerifyError(f"cosignature by {name}: wrong length")
            (timestamp,) = struct.unpack(">Q", blob[4:12])
            message = f"cosignature/v1\ntime {timestamp}\n".encode() + cp["text"].encode()
            if not ed25519_ok(public, blob[12:], message):
                raise VerifyError(f"cosignature by {name} does not verify")
            good += 1
            break
    return good


# ---- the export -------------------------------------------------------------

def verify(doc, log_key=None, min_cosignatures=0):
    if doc.get("format") != "bru-export/1":
        raise VerifyError(f"unknown format {doc.get('format')!r}")
    cp = parse_note(doc["checkpoint"])
    size = doc["checkpoint_size"]
    if cp["size"] != size:
        raise VerifyError(f"checkpoint_size {size} is not the checkpoint's size {cp['size']}")
    check_log_signature(cp, log_key or doc["verifier_keys"]["log"])
    cosigned = good_cosignatures(cp, doc["verifier_keys"].get("witnesses", []))
    if cosigned < min_cosignatures:
        raise VerifyError(f"{cosigned} witness cosignatures, {min_cosignatures} required")
    me = doc["subject_ref"]
    seen = set()
    for t in doc["transfers"]:
        record, index = t["record"], t["leaf_index"]
        if record.get("index") != index:
            raise VerifyError(f"leaf {index}: the record says index {record.get('index')}")
        if index in seen:
            raise VerifyError(f"leaf {index} is in the export twice")
        seen.add(index)
        if record.get("subject_ref") != me:
            raise VerifyError(f"leaf {index} is not about the export's subject")
        leaf = leaf_hash(canonical(record).encode("utf-8"))
        if base64.b64decode(t["leaf_hash"], validate=True) != leaf:
            raise VerifyError(f"leaf {index}: the record does not hash to leaf_hash")
        path = [base64.b64decode(h, validate=True) for h in t["audit_path"]]
        if root_from_inclusion(index, size, leaf, path) != cp["root"]:
            raise VerifyError(f"leaf {index}: the inclusion proof does not lead to the checkpoint's root")
    return (f"OK: {len(doc['transfers'])} transfers proven in {cp['origin']} at size {size}; "
            f"log signature verified; {cosigned} witness cosignature(s) verified; "
            f"{len(doc.get('consents', []))} consents")


def main(argv):
    if not argv or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    path, rest = argv[0], list(argv[1:])
    log_key, min_cosignatures = None, 0
    try:
        while rest:
            flag = rest.pop(0)
            if flag == "--log-key":
                log_key = rest.pop(0)
            elif flag == "--min-cosignatures":
                min_cosignatures = int(rest.pop(0))
            else:
                raise VerifyError(f"unknown argument {flag}")
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        print(verify(doc, log_key, min_cosignatures))
    except (VerifyError, ValueError, KeyError, IndexError, TypeError, OSError) as e:
        print(f"FAIL: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
