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

_MIN_LITERAL = 3
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
    if op is _c.IN and arg == [(_c.CATEGORY, _c.CATEGORY_DIGIT)]:
        return (frozenset("0123456789"),)
    return ()


def required_literals(pattern: str) -> Literals:
    """Return sets of strings: every match contains a member of each set."""
    return _sequence(list(_p.parse(pattern)))


def _trie_regex(words: Iterable[str]) -> str:
    """Build a regex that matches the longest of the words, branching by prefix.

    A flat alternation of hundreds of words is tried word by word at every
    position; a trie tests one character per level.
    """
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        ends = "" in node
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if ends:
            return "(?:" + body + ")?"
        return body

    return build(root)


def _selective(literal: str) -> bool:
    """Long literals, or ones with a digit or punctuation, are rare enough to scan for."""
    return len(literal) >= _MIN_LITERAL or not literal.isalpha()


class LiteralScanner:
    """Find, in one pass, which required-literal sets of many patterns a text meets."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self._ids: dict[frozenset[str], int] = {}
        self.guards: dict[str, frozenset[int]] = {}
        for pattern in patterns:
            # Sets with a short word ("x", "k") would hit almost every position
            # of the scan; they are left out (treated as always met).
            groups = [g for g in required_literals(pattern) if all(map(_selective, g))]
            ids = {self._ids.setdefault(group, len(self._ids)) for group in groups}
            self.guards[pattern] = frozenset(ids)
        literals = {lit for group in self._ids for lit in group}
        # A literal found at a position implies every literal that is its prefix.
        self._meets = {
            lit: frozenset(
                i for group, i in self._ids.items()
                if any(lit.startswith(member) for member in group)
            )
            for lit in literals
        }
        self._scan = re.compile("(?=(" + _trie_regex(literals) + "))") if literals else None

    def present(self, text: str) -> frozenset[int]:
        """Return the ids of the literal sets that the text meets."""
        if self._scan is None:
            return frozenset()
        meets = self._meets
        found: set[int] = set()
        for match in self._scan.finditer(text):
            lit = match.group(1)
            if lit:
                found |= meets[lit]
        return frozenset(found)


class RuleSet:
    """Ordered (pattern, replacement) rewrites that skip rules which cannot match."""

    def __init__(self, rules: Iterable[tuple[str, str]]) -> None:
        rules = [(str(p), str(r)) for p, r in rules]
        self._scanner = LiteralScanner(p for p, _ in rules)
        self._rules = [
            (re.compile(p), r, self._scanner.guards[p], _searches(p)) for p, r in rules
        ]

    def apply(self, text: str) -> str:
        """Apply every rule in order, as plain `re.sub` calls would."""
        present: frozenset[int] | None = self._scanner.present(text)
        for pattern, replacement, ids, searches in self._rules:
            # Until a rule changes the text, one scan answers for every rule;
            # after that, each rule checks its own literals on the new text.
            if ids <= present if present is not None else _all_found(searches, text):
                changed = pattern.sub(replacement, text)
                if changed != text:
                    text, present = changed, None
        return text


def _searches(pattern: str) -> list[Any]:
    return [
        re.compile("|".join(re.escape(lit) for lit in sorted(group))).search
        for group in required_literals(pattern)
    ]


def _all_found(searches: list[Any], text: str) -> bool:
    return all(search(text) is not None for search in searches)


class WordList:
    """Whole words and phrases to look for in normalized (space-separated) text."""

    def __init__(self, entries: Iterable[object]) -> None:
        cleaned = {" ".join(str(e).split()) for e in entries if str(e).strip()}
        self._words = frozenset(e for e in cleaned if " " not in e)
        self._phrases = tuple(f" {e} " for e in cleaned if " " in e)

    def found_in(self, text: str) -> bool:
        """Return True when any entry occurs in the text as whole words."""
        return self.found(frozenset(text.split()), f" {text} ")

    def found(self, words: frozenset[str], padded: str) -> bool:
        """Like found_in, for a text already split into words and padded with spaces."""
        if not self._words.isdisjoint(words):
            return True
        return any(phrase in padded for phrase in self._phrases)
