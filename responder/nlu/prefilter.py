"""Skip regular expressions that cannot match, using the literals they require.

The lexicon and red-flag rules are a hundred-odd regular expressions, and
running each over every message cost more than all the matching. Most rules
need a word ("cough", "swollen", "w/") to be present before they can match.
`required_literals` reads the parsed pattern and returns sets of strings:
every match contains a member of each set. One Aho-Corasick pass over the
message finds which sets it meets, and a rule with a set wholly absent is
skipped, so the result is exactly what running every rule would give.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import ahocorasick

try:  # Python 3.11+: the parser moved and the old name warns.
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser as _p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _p  # type: ignore[no-redef]

_MIN_LITERAL = 3
_CACHE_LIMIT = 50_000
Literals = tuple[frozenset[str], ...]  # every set must have a member in the text


def _best(sets: Literals) -> frozenset[str] | None:
    """Pick the most selective single set: the one whose shortest literal is longest."""
    return max(sets, key=lambda s: min(map(len, s)), default=None)


# A run of fixed alternatives ("(?:b|v)i(?:ll|y)o" is one of four strings) is kept
# as its strings while there are at most this many.
_MAX_RUN_STRINGS = 64
_REPEATS = (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", _c.MAX_REPEAT))


def _fixed_strings(op: Any, arg: Any) -> frozenset[str] | None:
    """Return the strings an item can match when they are few and fixed, else None."""
    if op is _c.LITERAL:
        return frozenset({chr(arg)})
    if op is _c.IN and all(kind is _c.LITERAL for kind, _ in arg):
        return frozenset(chr(v) for _, v in arg)
    if op is _c.BRANCH:
        strings: set[str] = set()
        for branch in arg[1]:
            tails = _fixed_run(branch)
            if tails is None:
                return None
            strings |= tails
        return frozenset(strings)
    return None


def _fixed_run(items: Sequence[tuple[Any, Any]]) -> frozenset[str] | None:
    """Return the few strings a sequence of fixed items can match, else None."""
    run = frozenset({""})
    for op, arg in items:
        strings = _fixed_strings(op, arg)
        if strings is None or len(run) * len(strings) > _MAX_RUN_STRINGS:
            return None
        run = frozenset(a + b for a in run for b in strings)
    return run


def _sequence(items: Sequence[tuple[Any, Any]]) -> Literals:
    found: list[frozenset[str]] = []
    # The strings that the items since the last variable part can match; a match
    # of the pattern contains one of them. "" in the set means nothing is required.
    run = frozenset({""})

    def flush() -> None:
        if "" not in run:
            found.append(run)

    for op, arg in items:
        strings = _fixed_strings(op, arg)
        if strings is not None:
            if len(run) * len(strings) > _MAX_RUN_STRINGS:
                flush()
                run = strings
            else:
                run = frozenset(a + b for a in run for b in strings)
            continue
        if op in _REPEATS:
            low, high, inner = arg
            strings = _fixed_run(inner) if low >= 1 else None
            if strings is not None and len(run) * len(strings) ** low <= _MAX_RUN_STRINGS:
                # "l+": the first `low` copies follow the run; the last copy is
                # followed by whatever comes next.
                for _ in range(low):
                    run = frozenset(a + b for a in run for b in strings)
                if high != low:
                    flush()
                    run = strings
                continue
        flush()
        run = frozenset({""})
        found.extend(_item(op, arg))
    flush()
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


def _selective(literal: str) -> bool:
    """Long literals, or ones with a digit or punctuation, are rare enough to scan for.

    Not spaces alone: " " (from "heat (coming|radiating)") is in every message of
    two words, and each of its hits cost the scan a Python loop turn.
    """
    return len(literal) >= _MIN_LITERAL or not (literal.isalpha() or literal.isspace())


class LiteralScanner:
    """Find, in one pass, which required-literal sets of many patterns a text meets."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self._ids: dict[frozenset[str], int] = {}
        self.guards: dict[str, frozenset[int]] = {}
        self._order: list[frozenset[int]] = []  # one entry per pattern, in order
        for pattern in patterns:
            # Sets with a short word ("x", "k") would hit almost every position
            # of the scan; they are left out (treated as always met).
            groups = [g for g in required_literals(pattern) if all(map(_selective, g))]
            ids = frozenset(self._ids.setdefault(group, len(self._ids)) for group in groups)
            self.guards[pattern] = ids
            self._order.append(ids)
        # One Aho-Corasick pass finds every occurrence of every literal, overlaps
        # included; each literal carries the sets it belongs to as a bit mask, so
        # the sets a text meets are one OR over the hits.
        self._automaton: Any = None
        owners: dict[str, int] = {}
        for group, group_id in self._ids.items():
            for literal in group:
                owners[literal] = owners.get(literal, 0) | 1 << group_id
        if owners:
            self._automaton = ahocorasick.Automaton()
            for literal, mask in owners.items():
                self._automaton.add_word(literal, mask)
            self._automaton.make_automaton()
        self._needs = [sum(1 << i for i in ids) for ids in self._order]
        # Index patterns by one of their literal sets, so a text's candidates
        # come from the sets it meets instead of a test of every pattern.
        self._unguarded = tuple(i for i, ids in enumerate(self._order) if not ids)
        self._by_set: dict[int, list[int]] = {}
        for index, ids in enumerate(self._order):
            if ids:
                self._by_set.setdefault(min(ids), []).append(index)
        self._indexed = sum(1 << key for key in self._by_set)  # the sets _by_set has
        # The candidates of each combination of sets met: texts meet the same few
        # combinations again and again ("calf", "cramp"), so each is worked out once.
        self._picked: dict[int, tuple[int, ...]] = {}

    def _met(self, text: str) -> int:
        """Return the bit mask of the literal sets that the text meets."""
        met = 0
        if self._automaton is not None:
            # A plain loop: the hits are few, and reduce(or_, map(...)) cost more.
            for _end, mask in self._automaton.iter(text):
                met |= mask
        return met

    def present(self, text: str) -> set[int]:
        """Return the ids of the literal sets that the text meets."""
        return set(_bits(self._met(text)))

    def candidates(self, text: str) -> tuple[int, ...]:
        """Return, in order, the indices of the patterns whose every literal set is met."""
        met = self._met(text)
        picked = self._picked.get(met)
        if picked is None:
            picked = self._pick(met)
            if len(self._picked) >= _CACHE_LIMIT:
                self._picked.clear()
            self._picked[met] = picked
        return picked

    def _pick(self, met: int) -> tuple[int, ...]:
        """Return, in order, the patterns whose literal sets are all in the mask."""
        needs, by_set = self._needs, self._by_set
        found = list(self._unguarded)
        for key in _bits(met & self._indexed):
            found += [i for i in by_set[key] if needs[i] & met == needs[i]]
        return tuple(sorted(found))


def _bits(mask: int) -> Iterator[int]:
    """Yield the positions of the bits set in the mask, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


class RuleSet:
    """Ordered (pattern, replacement) rewrites that skip rules which cannot match."""

    def __init__(self, rules: Iterable[tuple[str, str]]) -> None:
        rules = [(str(p), str(r)) for p, r in rules]
        self._scanner = LiteralScanner(p for p, _ in rules)
        self._rules = [(re.compile(p), r, _probe(p)) for p, r in rules]

    def apply(self, text: str) -> str:
        """Apply every rule in order, as plain `re.sub` calls would."""
        # One scan picks the rules to run; a rule that changes the text may
        # have made later rules possible, so the rest are picked again.
        done = -1
        candidates = self._scanner.candidates(text)
        position = 0
        while position < len(candidates):
            index = candidates[position]
            position += 1
            if index <= done:
                continue
            done = index
            pattern, replacement, probe = self._rules[index]
            if probe(text) is None:
                continue
            changed = pattern.sub(replacement, text)
            if changed != text:
                text = changed
                candidates, position = self._scanner.candidates(text), 0
        return text


def _probe(pattern: str) -> Callable[[str], re.Match[str] | None]:
    """Return a search that finds something wherever the pattern would match.

    Most candidate rules do not match, and re.sub costs twice re.search then: a
    replacement with group references goes through the re module's Python code
    on every call. A pattern led by \\b is probed without it, which lets the
    regex engine jump to its first characters instead of trying every position;
    dropping an assertion only lets more texts match, so a miss is still a miss.
    """
    if pattern.startswith("\\b"):
        try:
            return re.compile(pattern[2:]).search
        except re.error:  # "\\b?" and the like: the pattern itself, then
            pass
    return re.compile(pattern).search


class WordList:
    """Whole words and phrases to look for in normalized (space-separated) text."""

    def __init__(self, entries: Iterable[object]) -> None:
        cleaned = {" ".join(str(e).split()) for e in entries if str(e).strip()}
        self._words = frozenset(e for e in cleaned if " " not in e)
        phrases = sorted(re.escape(f" {e} ") for e in cleaned if " " in e)
        self._phrases = re.compile("|".join(phrases)).search if phrases else None

    @property
    def words(self) -> frozenset[str]:
        """The entries that are one word."""
        return self._words

    def found_in(self, text: str) -> bool:
        """Return True when any entry occurs in the text as whole words."""
        return self.found(frozenset(text.split()), f" {text} ")

    def found(self, words: frozenset[str], padded: str) -> bool:
        """Like found_in, for a text already split into words and padded with spaces."""
        if not self._words.isdisjoint(words):
            return True
        return self._phrases is not None and self._phrases(padded) is not None
