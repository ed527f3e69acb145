"""Request JSON that cannot crash a view: a body nested too deeply is just invalid JSON."""

from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, with RecursionError read as a ValueError (a 400, not a 500).

    json.loads recurses once per nesting level, so 64 KB of `[` (within
    CALFLINE_MAX_BODY_BYTES) exhausts Python's stack; get_json() handles ValueError.
    """

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
