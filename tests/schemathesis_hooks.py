"""Schemathesis hooks, loaded by schemathesis.toml (`hooks`).

A form field mutated to an empty list or object is serialised by schemathesis as *no part at
all*: the request on the wire then just leaves an optional field out, which the server rightly
serves, and schemathesis's own "became valid after serialisation" exemption cannot tell because
it fails on the binary `image` part. Such cases test nothing, so they are not generated. A list
of one value goes out as that value, one part, the same request as the scalar (a `dilate` of
`[0.0]` is sent as `0.0`, an integer by JSON Schema's own rule), so it is not generated either. A
list of two or more (a repeated field) is still sent and must still be refused (400).
"""

from typing import Any

import schemathesis


@schemathesis.hook
def filter_body(ctx: Any, body: Any) -> bool:
    """Keep a body unless one of its form fields would be sent as nothing, or as one plain value."""
    return not (
        isinstance(body, dict)
        and any(value in ([], {}) or (isinstance(value, list) and len(value) == 1) for value in body.values())
    )
