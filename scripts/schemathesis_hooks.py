"""schemathesis hooks for scripts/test-openapi (SCHEMATHESIS_HOOKS).

schemathesis 4 counts `application/jwt` among the JSON media types and parses
a consent receipt as JSON. RFC 7519 (section 10.3.1) registers
`application/jwt` for a JWT in compact serialisation: three base64url
segments, the first two JSON objects. This deserializer reads it as that and
hands the compact string to the response schema check (the document says: a
string of that pattern).
"""

import base64
import json

import schemathesis
from schemathesis.core import deserialization


_json = deserialization._DESERIALIZERS["application/json"]


@schemathesis.deserializer("application/jwt")
def compact_jwt(ctx, response):
    # Registered for application/jwt, it is also asked for the other JSON types.
    media_type = (response.headers.get("content-type") or [""])[0].split(";")[0].strip().lower()
    if media_type != "application/jwt":
        return _json(ctx, response)
    text = response.content.decode("ascii")
    parts = text.split(".")
    if len(parts) != 3:
        raise ValueError(f"a JWT has three segments, this has {len(parts)}")
    for name, part in zip(("header", "claims"), parts[:2]):
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        if not isinstance(value, dict):
            raise ValueError(f"the JWT's {name} is not a JSON object")
    return text


# Ahead of the built-in JSON deserializer, which also claims application/jwt.
deserialization._DESERIALIZERS = {
    "application/jwt": compact_jwt,
    **{k: v for k, v in deserialization._DESERIALIZERS.items() if k != "application/jwt"},
}
