#!/usr/bin/env python3
"""An independent C2SP tlog-tiles reader (written from c2sp.org/tlog-tiles,
c2sp.org/tlog-checkpoint and c2sp.org/signed-note, not from Bru's code).

usage: read_tiles.py BASE_URL CA_FILE LOG_VKEY

Fetches BASE_URL/checkpoint without credentials, verifies the log's Ed25519
signature with LOG_VKEY, fetches every level-0 hash tile (full and the
partial one), recomputes the RFC 6962 Merkle Tree Hash and compares it with
the checkpoint's root; checks every level-1 hash against the level-0 tile it
summarises; checks the caching headers. Prints `OK size=N` or exits non-zero.
"""
import base64
import hashlib
import ssl
import sys
import urllib.error
import urllib.request

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

base, ca_file, vkey = sys.argv[1:4]
ctx = ssl.create_default_context(cafile=ca_file)


def get(path):
    req = urllib.request.Request(base + path)
    try:
        with urllib.request.urlopen(req, context=ctx) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


# --- the checkpoint (signed-note + tlog-checkpoint) ---
status, headers, body = get("/checkpoint")
if status != 200:
    fail("/checkpoint answered %d" % status)
if not headers.get("Content-Type", "").startswith("text/plain"):
    fail("checkpoint content type %r" % headers.get("Content-Type"))
if "max-age" not in headers.get("Cache-Control", ""):
    fail("checkpoint cache-control %r" % headers.get("Cache-Control"))
note = body.decode("utf-8")
split = note.rindex("\n\n")
text, sig_lines = note[: split + 1], note[split + 2 :]
origin, size_line, root_b64 = text.split("\n")[:3]
name, key_id_hex, key_b64 = vkey.split("+", 2)
typed = base64.b64decode(key_b64)
if typed[0] != 0x01:
    fail("not an Ed25519 signed-note key")
public_key = typed[1:]
key_id = hashlib.sha256(name.encode() + b"\n\x01" + public_key).digest()[:4]
if key_id.hex() != key_id_hex or name != origin:
    fail("the key does not match the log")
verified = False
for line in sig_lines.splitlines():
    if not line.startswith("\u2014 "):
        fail("bad signature line %r" % line)
    signer, blob_b64 = line[2:].split(" ", 1)
    blob = base64.b64decode(blob_b64)
    if signer == name and blob[:4] == key_id:
        Ed25519PublicKey.from_public_bytes(public_key).verify(blob[4:], text.encode())
        verified = True
if not verified:
    fail("no valid signature by the log")
size = int(size_line)
root = base64.b64decode(root_b64)


# --- tiles ---
def tile_path(level, n, width=None):
    groups = []
    while True:
        groups.insert(0, n % 1000)
        n //= 1000
        if n == 0:
            break
    path = "/".join(["x%03d" % g for g in groups[:-1]] + ["%03d" % groups[-1]])
    path = "/tile/%d/%s" % (level, path)
    if width is not None:
        path += ".p/%d" % width
    return path


def fetch_tile(level, n, width):
    path = tile_path(level, n, None if width == 256 else width)
    status, headers, body = get(path)
    if status != 200:
        fail("%s answered %d" % (path, status))
    if headers.get("Content-Type") != "application/octet-stream":
        fail("%s content type %r" % (path, headers.get("Content-Type")))
    if "immutable" not in headers.get("Cache-Control", ""):
        fail("%s cache-control %r" % (path, headers.get("Cache-Control")))
    if len(body) != 32 * width:
        fail("%s has %d bytes, not %d" % (path, len(body), 32 * width))
    return [body[i : i + 32] for i in range(0, len(body), 32)]


def level_hashes(level, count):
    out = []
    for n in range(count // 256):
        out.extend(fetch_tile(level, n, 256))
    if count % 256:
        out.extend(fetch_tile(level, count // 256, count % 256))
    return out


def mth(hashes):
    """RFC 6962 Merkle Tree Hash over already-hashed leaves."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(hashes[:k]) + mth(hashes[k:])).digest()


leaves = level_hashes(0, size)
if mth(leaves) != root:
    fail("the level-0 tiles do not hash to the checkpoint's root")
if size >= 256:
    level1 = level_hashes(1, size // 256)
    for i, h in enumerate(level1):
        if h != mth(leaves[i * 256 : (i + 1) * 256]):
            fail("level-1 hash %d does not summarise level-0 tile %d" % (i, i))
# Records never leave through the tiles.
status, _, _ = get("/tile/entries/000")
if status != 404:
    fail("/tile/entries/000 answered %d" % status)
# A tile beyond the signed tree is not served.
status, _, _ = get(tile_path(0, size // 256 + 1))
if status != 404:
    fail("a tile beyond the checkpoint answered %d" % status)
print("OK size=%d" % size)
