"""Join each language's sign words and shorthand (intents/es/_red_flags.yaml,
intents/es/_lexicon.yaml) to the shared English files.

The rules are shared, not per language, because people mix languages in one
message ("my pantorrilla esta swollen"): every message is read with all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from responder.errors import IntentDataError


def merged_file(
    base: Path, folders: Iterable[Path], read: Callable[[Path], dict[str, Any]]
) -> dict[str, Any]:
    """Read `base` and add the same-named file of each language folder that has one."""
    rules = read(base)
    for folder in folders:
        path = folder / base.name
        if path.is_file():
            rules = merge_rules(path, rules, read(path))
    return rules


def merge_rules(path: Path, base: Any, extra: Any, where: str = "") -> Any:
    """Add a language's lexicon or sign rules to the shared ones.

    Lists are extended and mappings merged key by key; a word that already has
    another meaning, or a sign name the base rules do not have, stops start-up.
    """
    if isinstance(base, dict) and isinstance(extra, dict):
        merged = dict(base)
        for key, value in extra.items():
            name = f"{where}.{key}" if where else str(key)
            merged[key] = merge_rules(path, base[key], value, name) if key in base else value
        return merged
    if where == "signs" and isinstance(base, list) and isinstance(extra, list):
        signs = {sign.get("name"): dict(sign) for sign in base}
        for sign in extra:
            sign_name = sign.get("name") if isinstance(sign, dict) else None
            if sign_name not in signs:
                raise IntentDataError(path, f"signs.{sign_name}",
                                      "must name a sign of _red_flags.yaml")
            known = signs[sign_name]
            known["patterns"] = [*known.get("patterns", []), *sign.get("patterns", [])]
        return list(signs.values())
    if isinstance(base, list) and isinstance(extra, list):
        return [*base, *extra]
    if base != extra:
        raise IntentDataError(path, where, f"{extra!r} clashes with {base!r} in the base file")
    return base
