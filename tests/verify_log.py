#!/usr/bin/env python3
"""An independent verifier of Bru's transparency log, from the outside.

Uses only hashlib, base64 and json (and, to check the Ed25519 signature of a
checkpoint, the `cryptography` package when it is installed). Nothing here
comes from Bru's code: the records are canonicalised per RFC 8785 here, and
the proofs are checked with the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2.

usage:
  verify_log.py RECORDS.jsonl CHECKPOINT.txt [--key VERIFIER_KEY]
                [--inclusion PROOF.json]... [--consistency PROOF.json OLD_CHECKPOINT.txt]...
  verify_log.py --self-test

RECORDS.jsonl is `bru audit export --format jsonl` (or the audit API's
records, one per line); CHECKPOINT.txt the signed note of
GET /audit/v1/checkpoint; an inclusion proof is the JSON of
GET /audit/v1/proof/inclusion (or a citizen's proof), a consistency proof
that of GET /audit/v1/proof/consistency, with the checkpoint it starts from.

Exit 0 and "OK ..." when everything verifies, 1 and "FAIL: ..." otherwise.
"""

import base64
import hashlib
import json
import sys


class VerifyError(Exception):
    pass


# ---- RFC 8785 for the values a record holds ---------------------------------

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
        raise VerifyError("audit records hold no floating-point numbers")
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, dict):
        # Members ordered by the UTF-16 code units of their names.
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(quote(k) + ":" + canonical(value[k]) for k in keys) + "}"
    raise VerifyError(f"unexpected JSON value {value!r}")


SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def quote(s):
    out = ['"']
    for ch in s:
        if ch in SHORT:
            out.append(SHORT[ch])
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# ---- RFC 9162 hashing -------------------------------------------------------

def sha256(data):
    return hashlib.sha256(data).digest()


def leaf_hash(data):
    return sha256(b"\x00" + data)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def mth(leaves):
    """The Merkle tree hash by RFC 9162 §2.1.1's definition."""
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def verify_inclusion(index, size, leaf, proof, root):
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        raise VerifyError(f"inclusion: index {index} is not below size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise VerifyError("inclusion: the proof is too long")
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
        raise VerifyError("inclusion: the proof is too short")
    if r != root:
        raise VerifyError(f"inclusion of {index} in {size}: the proof leads to another root")


def verify_consistency(first, second, proof, first_hash, second_hash):
    """RFC 9162 §2.1.4.2 (with the equal-size case it leaves to the caller)."""
    if first > second:
        raise VerifyError("consistency: the first tree is larger")
    if first == second:
        if proof or first_hash != second_hash:
            raise VerifyError("consistency: equal sizes need an empty proof and equal roots")
        return
    if first == 0:
        return
    if not proof:
        raise VerifyError("consistency: the proof is empty")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerifyError("consistency: the proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerifyError("consistency: the proof is too short")
    if fr != first_hash or sr != second_hash:
        raise VerifyError(f"consistency {first} -> {second}: the proof does not lead to both roots")


# ---- C2SP signed notes and checkpoints ---------------------------------------

def parse_checkpoint(note):
    split = note.rfind("\n\n")
    if split < 0:
        raise VerifyError("checkpoint: no blank line before the signatures")
    text, sigs = note[: split + 1], note[split + 2:]
    lines = text[:-1].split("\n")
    if len(lines) != 3:
        raise VerifyError("checkpoint: the note text is not origin, size, root")
    origin, size, root = lines
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


def check_signature(cp, vkey):
    """Returns whether the signature was checked (False without `cryptography`)."""
    name, key_id, key = vkey.strip().split("+", 2)
    typed = base64.b64decode(key)
    if typed[0] != 1 or len(typed) != 33:
        raise VerifyError("the verifier key is not an Ed25519 key")
    public = typed[1:]
    expected_id = sha256(name.encode() + b"\n\x01" + public)[:4]
    if expected_id.hex() != key_id:
        raise VerifyError("the verifier key's id does not match its key")
    # The checkpoint is signed under the key name of its origin.
    want_id = sha256(cp["origin"].encode() + b"\n\x01" + public)[:4]
    blobs = [b for (n, b) in cp["signatures"] if n == cp["origin"] and b[:4] == want_id]
    if not blobs:
        raise VerifyError("checkpoint: no signature by the checkpoint key")
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.exceptions import InvalidSignature
    except ImportError:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(blobs[0][4:], cp["text"].encode())
    except InvalidSignature:
        raise VerifyError("checkpoint: the signature does not verify")
    return True


# ---- the log ----------------------------------------------------------------

def load_leaves(path):
    leaves = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            if record.get("index") != len(leaves):
                raise VerifyError(f"record {len(leaves)} is missing (found index {record.get('index')})")
            leaves.append(leaf_hash(canonical(record).encode("utf-8")))
    return leaves


def hashes(proof):
    return [base64.b64decode(h, validate=True) for h in proof["hashes"]]


def verify(args):
    records, checkpoint_path = args[0], args[1]
    rest = args[2:]
    vkey, inclusions, consistencies = None, [], []
    while rest:
        flag = rest.pop(0)
        if flag == "--key":
            vkey = rest.pop(0)
        elif flag == "--inclusion":
            inclusions.append(rest.pop(0))
        elif flag == "--consistency":
            consistencies.append((rest.pop(0), rest.pop(0)))
        else:
            raise VerifyError(f"unknown argument {flag}")
    leaves = load_leaves(records)
    with open(checkpoint_path, encoding="utf-8") as f:
        cp = parse_checkpoint(f.read())
    signed = "signature not checked (no key given)"
    if vkey:
        signed = "signature verified" if check_signature(cp, vkey) else "key id checked; signature not checked (no cryptography module)"
    size = cp["size"]
    if size > len(leaves):
        raise VerifyError(f"the checkpoint covers {size} records but only {len(leaves)} were given")
    roots = {}

    def root(n):
        if n not in roots:
            roots[n] = mth(leaves[:n])
        return roots[n]

    if root(size) != cp["root"]:
        raise VerifyError(f"the records do not hash to the checkpoint's root at size {size}")
    for path in inclusions:
        with open(path, encoding="utf-8") as f:
            proof = json.load(f)
        i, n = proof["index"], proof["size"]
        if i >= len(leaves) or n > len(leaves):
            raise VerifyError(f"inclusion of {i} in {n}: beyond the records given")
        if "record" in proof:
            # A citizen's proof carries its record: it must be the one in the log.
            if leaf_hash(canonical(proof["record"]).encode("utf-8")) != leaves[i]:
                raise VerifyError(f"inclusion of {i}: the proof's record differs from the log's")
        verify_inclusion(i, n, leaves[i], hashes(proof), cp["root"] if n == size else root(n))
    for path, old_path in consistencies:
        with open(path, encoding="utf-8") as f:
            proof = json.load(f)
        with open(old_path, encoding="utf-8") as f:
            old = parse_checkpoint(f.read())
        if vkey:
            check_signature(old, vkey)
        a, b = proof["from"], proof["to"]
        if old["size"] != a:
            raise VerifyError(f"consistency: the old checkpoint has size {old['size']}, the proof starts at {a}")
        new_root = cp["root"] if b == size else root(b)
        verify_consistency(a, b, hashes(proof), old["root"], new_root)
    return (f"OK: {len(leaves)} records; checkpoint {cp['origin']} size {size} root matches ({signed}); "
            f"{len(inclusions)} inclusion and {len(consistencies)} consistency proofs verify")


# ---- RFC 6962 / 9162 test vectors (transparency-dev/merkle) ------------------

def self_test():
    h = bytes.fromhex
    data = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
    leaves = [leaf_hash(h(d)) for d in data]
    roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
    for n in range(1, 9):
        assert mth(leaves[:n]).hex() == roots[n - 1], n
    inclusion = [
        (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
        (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
        (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    ]
    for i, n, proof in inclusion:
        proof = [h(p) for p in proof]
        verify_inclusion(i, n, leaves[i], proof, h(roots[n - 1]))
        bad = list(proof)
        bad[0] = bytes([bad[0][0] ^ 8]) + bad[0][1:]
        try:
            verify_inclusion(i, n, leaves[i], bad, h(roots[n - 1]))
        except VerifyError:
            pass
        else:
            raise AssertionError("a corrupted inclusion proof verified")
    consistency = [
        (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
        (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
        (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
        (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    ]
    for a, b, proof in consistency:
        proof = [h(p) for p in proof]
        verify_consistency(a, b, proof, h(roots[a - 1]), h(roots[b - 1]))
        try:
            verify_consistency(a, b, proof, h(roots[b - 1]), h(roots[a - 1]))
        except VerifyError:
            pass
        else:
            raise AssertionError("swapped roots verified")
    # RFC 8785 §3.2.2.2 and §3.2.3.
    assert canonical(json.loads('"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/"')) == \
        '"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"'
    sample = json.loads('{"\\u20ac":1,"\\r":2,"\\ufb33":3,"1":4,"\\ud83d\\ude00":5,"\\u0080":6,"\\u00f6":7}')
    assert canonical(sample) == '{"\\r":2,"1":4,"\u0080":6,"ö":7,"€":1,"😀":5,"\ufb33":3}', canonical(sample)
    return "OK: self-test (RFC 6962/9162 vectors, RFC 8785 examples)"


def main(argv):
    try:
        if argv == ["--self-test"]:
            print(self_test())
        elif len(argv) >= 2:
            print(verify(list(argv)))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (VerifyError, ValueError, KeyError, IndexError, OSError, AssertionError) as e:
        print(f"FAIL: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
