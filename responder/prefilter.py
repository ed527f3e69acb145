"""Skip regular expressions that cannot match, using the literals they require.

The lexicon and red-flag rules are a hundred-odd regular expressions, and
running each over every message cost more than all the matching. Most rules
need a word ("cough", "swollen", "w/") to be present before they can match, and
a substring test for it costs a fraction of a regex scan. `required_literals`
reads the parsed pattern and returns sets of strings: every match contains a
member of each set, and a rule with a set wholly absent is skipped, so the result is
exactly what running every rule would give.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

try:  # Python 3.11+: the parser moved and the old name warns.
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser as _p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _p  # type: ignore[no-redef]

Literals = tuple[frozenset[str], ...]  # every set must have a member in the text


def _best(sets: Literals) -> frozenset[str] | None:
    """Pick the most selective single set: the one whose shortest literal is longest."""
    return max(sets, key=lambda s: min(map(len, s)), default=None)


def _sequence(items: Sequence[tuple[Any, Any]]) -> Literals:
    found: list[frozenset[str]] = []
    run = ""
    for op, arg in items:
        if op is _c.LITERAL:
            run += chr(arg)
            continue
        if run:
            found.append(frozenset({run}))
            run = ""
        found.extend(_item(op, arg))
    if run:
        found.append(frozenset({run}))
    return tuple(found)


def _item(op: Any, arg: Any) -> Literals:
    if op is _c.SUBPATTERN:
        return _sequence(arg[-1])
    if op is _c.BRANCH:
        branches = [_best(_sequence(b)) for b in arg[1]]
        if any(b is None for b in branches):
            return ()
        return (frozenset().union(*branches),)  # type: ignore[arg-type]
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT) or op is getattr(_c, "POSSESSIVE_REPEAT", None):
        low, _high, inner = arg
        return _sequence(inner) if low >= 1 else ()
    if op is _c.IN and all(kind is _c.LITERAL for kind, _ in arg):
        return (frozenset(chr(v) for _, v in arg),)
    return ()


def required_literals(pattern: str) -> Literals:
    """Return sets of strings: every match contains a member of each set."""
    return _sequence(list(_p.parse(pattern)))


class Guard:
    """A compiled test for a pattern's required literals: one C-level search per set."""

    def __init__(self, pattern: str) -> None:
        self._tests = [
            re.compile("|".join(re.escape(lit) for lit in sorted(group))).search
            for group in required_literals(pattern)
        ]

    def allows(self, text: str) -> bool:
        """Return False only when the text lacks every member of some required set."""
        for test in self._tests:
            if test(text) is None:
                return False
        return True


class RuleSet:
    """Ordered (pattern, replacement) rewrites that skip rules which cannot match."""

    def __init__(self, rules: Iterable[tuple[str, str]]) -> None:
        self._rules = [(re.compile(p), r, Guard(p)) for p, r in rules]

    def apply(self, text: str) -> str:
        """Apply every rule in order, as plain `re.sub` calls would."""
        for pattern, replacement, guard in self._rules:
            if guard.allows(text):
                text = pattern.sub(replacement, text)
        return text
