"""Turn a raw SMS, transcript or clinic note into the words the intents use.

Order matters: Unicode and emoji first, then phrase rewrites that need the
punctuation ("w/o", "can't"), then per-word shorthand, then spelling
correction against the intents' own vocabulary, and last the speech slips
that need corrected neighbours ("my car is crampng" -> "my calf is cramping").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process

from responder.nlu.prefilter import RuleSet

# Typographic quotes and accents typed as apostrophes (standard folding).
_QUOTES = str.maketrans({"‘": "'", "’": "'", "`": "'", "´": "'", "“": '"', "”": '"'})
_REPEATS = re.compile(r"(.)\1{2,}")
# Whether _REPEATS can match: the same three characters, found in half the time
# (two back-references where {2,} runs the regex engine's general repeat).
_TRIPLE = re.compile(r"(.)\1\1")
_DOUBLES = re.compile(r"(.)\1+")
_NON_WORD = re.compile(r"[^a-z0-9 ]+")
_NON_WORD_OR_CLAUSE = re.compile(r"[^a-z0-9 ,.?]+")
# Clause punctuation the red-flag context needs (NegEx scope ends at a clause):
# a sentence end (. ! ; or a new line) becomes " . ", a question " ? " (a sign
# asked about, "puffy?", is a doubt), a comma, colon or dash between words " , ";
# "2.5" and "1,000" stay numbers.
_SENTENCE_MARK = re.compile(r"[!?;\n]+|\.+(?!\d)")
# "(?<!\d)," written as ",(?<!\d,)": every branch then starts with a character,
# so the regex engine skips to the next ",", ":" or space instead of trying
# every branch at every position (twice as fast; the same matches).
_COMMA_MARK = re.compile(r",(?<!\d,)|,(?!\d)|:|\s[-\u2013\u2014]+\s")
_MARKS = re.compile(r"(?: [,.?])+")
_CACHE_LIMIT = 50_000


def has_clause_marks(text: str) -> bool:
    """True when a text normalized with `clauses` may hold a clause mark (, . ?)."""
    return "," in text or "." in text or "?" in text


# The characters each clause regex needs: most messages have none of them, and
# five `in` tests cost a twentieth of a regex pass (any(map(...)) cost a quarter).
def _may_end_sentence(text: str) -> bool:
    """True when _SENTENCE_MARK may match: the text holds . ? ! ; or a new line."""
    return "." in text or "?" in text or "!" in text or ";" in text or "\n" in text


def _may_join_clauses(text: str) -> bool:
    """True when _COMMA_MARK may match: the text holds a comma, a colon or a dash."""
    return "," in text or ":" in text or "-" in text or "\u2013" in text or "\u2014" in text


def _sentence_mark(match: re.Match[str]) -> str:
    # One "?" asks; "??" and "?!" press a point ("swollen and red??").
    return " ? " if match.group(0) == "?" else " . "


def _first_mark(match: re.Match[str]) -> str:
    """A run of clause marks keeps one: a question if it holds one, else its first."""
    marks = match.group(0)
    return " ?" if "?" in marks else marks[:2]


def _undoubled(word: str) -> str:
    """Return the word with each run of a letter cut to one ("caalf" -> "calf").

    A word without a run is only searched: re.sub with a group reference costs
    five times as much, as it goes through the re module's Python template code.
    """
    return _DOUBLES.sub(r"\1", word) if _DOUBLES.search(word) else word


def fold(text: str) -> str:
    """Drop accents and compatibility forms: 'Café' -> 'cafe', full-width -> ASCII."""
    if text.isascii():  # ASCII is its own NFKD form: nothing to drop
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


class _SpelledWords(dict[str, str]):
    """word -> Normalizer._spell(word), worked out on a word's first use and kept
    (bounded).

    Every token of every message passes through it, and most recur: a dict serves
    them from C, where a method call per token cost more than the look-up.
    """

    def __init__(self, spell: Callable[[str], str]) -> None:
        super().__init__()
        self._spell = spell

    def __missing__(self, word: str) -> str:
        spelled = self._spell(word)
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        self[word] = spelled
        return spelled


class Normalizer:
    """Rewrite text into normalized tokens using the lexicon in intents/_lexicon.yaml."""

    def __init__(
        self,
        lexicon: Mapping[str, Any],
        english: frozenset[str] = frozenset(),
        vocabulary: Iterable[str] = (),
    ) -> None:
        emoji = {str(k): str(v) for k, v in lexicon.get("emoji", {}).items()}
        self._emoji = str.maketrans({k: v for k, v in emoji.items() if len(k) == 1})
        self._emoji_sequences = {k: v for k, v in emoji.items() if len(k) > 1}
        self._phrases = RuleSet(lexicon.get("phrases", []))
        self._speech = RuleSet(lexicon.get("speech", []))
        self._abbrev = {str(k): str(v) for k, v in lexicon.get("abbreviations", {}).items()}
        self._english = english
        self._vocab = frozenset(vocabulary)
        # Only words of 4+ letters are corrected: shorter ones are too easy to
        # turn into another real word.
        targets = sorted(w for w in self._vocab if len(w) >= 4 and w.isalpha())
        # Spelling targets by length and by first and last letter: a typo drops, adds
        # or swaps a letter, so it is one letter shorter to one longer than the word
        # meant and keeps its first or its last letter. Comparing a new word with
        # only those targets is most of the lookup's saving (bench/matcher.py).
        self._by_first: dict[tuple[int, str], list[str]] = {}
        self._by_last: dict[tuple[int, str], list[str]] = {}
        for w in targets:
            self._by_first.setdefault((len(w), w[0]), []).append(w)
            self._by_last.setdefault((len(w), w[-1]), []).append(w)
        self._spelled = _SpelledWords(self._spell)
        # Shorthand that expands to tidy words ("dont" -> "do not") keeps the joined
        # tokens single-spaced, so only a speech rule's rewrite needs them re-split.
        self._tidy = all(v == " ".join(v.split()) != "" for v in self._abbrev.values())
        self._lexicon = lexicon

    def with_vocabulary(self, vocabulary: Iterable[str]) -> Normalizer:
        """Return a normalizer that also corrects spelling towards these words."""
        return Normalizer(self._lexicon, self._english, vocabulary)

    def clean(self, text: str, clauses: bool = False) -> list[str]:
        """Normalize case, Unicode, emoji, punctuation and shorthand; no spelling fixes.

        With `clauses`, clause punctuation stays as a word of its own: "." ends a
        sentence, "," a clause.
        """
        if not text.isascii():
            text = unicodedata.normalize("NFKC", text)
            for symbol, word in self._emoji_sequences.items():
                text = text.replace(symbol, word)
            text = fold(text.translate(self._emoji).casefold())
        text = text.lower()
        if not text.isascii() or "`" in text:  # the quotes but "`" are not ASCII
            text = text.translate(_QUOTES)
        text = self._phrases.apply(text)
        if clauses:
            if _may_end_sentence(text):
                text = _SENTENCE_MARK.sub(_sentence_mark, text)
            if _may_join_clauses(text):
                text = _COMMA_MARK.sub(" , ", text)
            text = _NON_WORD_OR_CLAUSE.sub(" ", text)
        else:
            text = _NON_WORD.sub(" ", text)
        if _TRIPLE.search(text):
            text = _REPEATS.sub(r"\1\1", text)
        abbrev = self._abbrev
        return " ".join([abbrev.get(token, token) for token in text.split()]).split()

    def normalize(self, text: str, clauses: bool = False) -> str:
        """Return the fully normalized text: clean, spell-corrected, speech slips fixed.

        With `clauses`, boundaries stay as " . ", " , " and " ? " (never first, and
        never last but for a question: "puffy?"; a run of them keeps one).
        """
        joined = " ".join(map(self._spelled.__getitem__, self.clean(text, clauses)))
        spoken = self._speech.apply(joined)
        if spoken != joined or not self._tidy:
            joined = " ".join(spoken.split())
        if clauses and has_clause_marks(joined):
            joined = _MARKS.sub(_first_mark, f" {joined} ").lstrip(" ,.?").rstrip(" ,.")
        return joined

    def _spell(self, word: str) -> str:
        """Return the word spelling-corrected, then with its shorthand expanded."""
        corrected = self._correct(word)
        return self._abbrev.get(corrected, corrected)

    def _correct(self, word: str) -> str:
        if word in self._vocab or not word.isalpha():
            return word
        if len(word) < 4:
            if word in self._english:
                return word
            single = _undoubled(word)
            return single if single in self._vocab else word
        return self._lookup(word)

    def _lookup(self, word: str) -> str:
        single = _undoubled(word)
        if single in self._vocab:
            return single
        if word in self._english:
            return word
        cutoff = 85.0 if len(word) <= 4 else 80.0
        # A typo drops, adds or swaps a letter; a longer gap is another word or another
        # form of one ("amortiguada" is not "amoratada").
        near = self._near_targets(word)
        if not near:
            return word
        # The best target at or above the cutoff, the first of equals: what
        # process.extractOne gives, from one call that scores every target (a
        # quarter faster than extractOne's result per target).
        scores = process.cdist([word], near, scorer=fuzz.ratio, score_cutoff=cutoff,
                               dtype=np.float64)[0]
        best = int(scores.argmax())
        return near[best] if scores[best] >= cutoff else word

    def _near_targets(self, word: str) -> list[str]:
        """The spelling targets a typo of `word` can be (one sharing both its first and
        last letter comes twice, which extractOne does not mind)."""
        size, first, last = len(word), word[0], word[-1]
        near: list[str] = []
        for length in (size - 1, size, size + 1):
            near += self._by_first.get((length, first), ())
            near += self._by_last.get((length, last), ())
        return near
