"""Sort a message into one intent of the contract.

The rules around the fuzzy score, in the order they apply:
1. opt_out / opt_in / help command words are exact matches on the whole
   message, never guesses (Twilio's opt-out keywords are single words).
2. A red-flag sign that is present wins over everything.
3. The TF-IDF scorer ranks the rest; a message only about another body part,
   or scoring below the fallback threshold, is out_of_scope.
4. When the top two calf intents are within the ambiguity margin the reply
   asks a clarifying question (Rasa's defaults: fallback 0.3, margin 0.1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import snowballstemmer

from responder.nlu.catalog import CALF_INTENTS, Catalog
from responder.nlu.normalize import Normalizer
from responder.nlu.prefilter import WordList
from responder.nlu.redflags import RedFlagDetector, SignHit
from responder.nlu.scoring import IntentScorer

_EDGE_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$")


def command_word(text: str) -> str:
    """Return the message as one lower-case word or phrase without edge punctuation."""
    return " ".join(_EDGE_PUNCTUATION.sub("", text.strip().casefold()).split())
# Function words carry no intent on their own; they still count in bigrams.
_STOPWORDS = frozenset(
    "a an the my me i is am are was it to of and or in on at for with so do does "
    "be been this that im just really very".split()
)


@dataclass(frozen=True)
class Match:
    """The matcher's verdict on one message."""

    text: str
    normalized: str
    intent: str
    confidence: float
    runner_up: str | None = None
    runner_up_confidence: float = 0.0
    ambiguous: bool = False
    reason: str = "score"
    signs: tuple[SignHit, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Thresholds:
    """Where the fuzzy score stops being trusted; both are configuration."""

    fallback: float = 0.2
    ambiguity: float = 0.1


def english_words(min_count: int = 100) -> frozenset[str]:
    """Return common English words, which the speller must leave alone."""
    from spellchecker import SpellChecker

    counts = SpellChecker(distance=1).word_frequency.dictionary
    return frozenset(w for w, c in counts.items() if c >= min_count and w.isalpha())


class Matcher:
    """Everything precomputed once from the catalog; match() is cheap."""

    def __init__(
        self,
        catalog: Catalog,
        thresholds: Thresholds | None = None,
        english: frozenset[str] | None = None,
    ) -> None:
        self.catalog = catalog
        self.thresholds = thresholds or Thresholds()
        lexicon = catalog.lexicon
        base = Normalizer(lexicon, english if english is not None else english_words())
        self._commands = catalog.commands()
        scored = {
            i.id: [" ".join(base.clean(e)) for e in i.examples]
            for i in catalog.intents.values()
            if not all(command_word(e) in i.commands for e in i.examples)
        }
        vocabulary = {w for texts in scored.values() for t in texts for w in t.split()}
        vocabulary |= {str(w) for w in lexicon.get("content_words", [])}
        self.normalizer = base.with_vocabulary(vocabulary)
        scored = {k: [self.normalizer.normalize(t) for t in v] for k, v in scored.items()}
        stemmer = snowballstemmer.stemmer("english")
        self.scorer = IntentScorer(scored, stemmer.stemWord, _STOPWORDS)
        self.detector = RedFlagDetector(catalog.red_flags, lexicon)
        parts = lexicon.get("body_parts", {})
        self._in_scope = WordList(parts.get("in_scope", []))
        self._out_scope = WordList(parts.get("out_of_scope", []))
        self._content = WordList(lexicon.get("content_words", []))
        self._symptoms = WordList(lexicon.get("symptom_words", []))

    def command(self, text: str) -> str | None:
        """Return the intent of an exact command word ("STOP", " help! "), else None."""
        return self._commands.get(command_word(text))

    def match(self, text: str) -> Match:
        """Classify one message."""
        command = self.command(text)
        if command:
            return Match(text, text.strip().casefold(), command, 1.0, reason="command")
        normalized = self.normalizer.normalize(text)
        if not normalized:
            return Match(text, normalized, "out_of_scope", 1.0, reason="empty")
        signs = tuple(self.detector.find(normalized))
        words = frozenset(normalized.split())
        padded = f" {normalized} "
        in_scope = self._in_scope.found(words, padded)
        other_part = self._out_scope.found(words, padded)
        symptom = self._symptoms.found(words, padded)
        calf_symptom = symptom and in_scope and not other_part
        ranked = self._rank(normalized, calf_symptom, self._content.found(words, padded))
        if any(s.present for s in signs):
            runner, runner_score = ranked[0]
            return Match(text, normalized, "red_flag", 1.0, runner, round(runner_score, 3),
                         reason="red_flag", signs=signs)
        (best, score), (second, second_score) = ranked[0], ranked[1]
        if other_part and not in_scope:
            return Match(text, normalized, "out_of_scope", 1.0, best, round(score, 3),
                         reason="other_body_part", signs=signs)
        if best == "out_of_scope" and symptom and second in CALF_INTENTS:
            # A calf symptom is in the message: answering the closest calf
            # intent helps more than "I can only help with calves".
            if second_score >= 0.6 * score:
                (best, score), (second, second_score) = ranked[1], ranked[0]
        if score < self.thresholds.fallback and not calf_symptom:
            return Match(text, normalized, "out_of_scope", round(1.0 - score, 3), best,
                         round(score, 3), reason="fallback", signs=signs)
        ambiguous = (
            best in CALF_INTENTS and second in CALF_INTENTS
            and score - second_score < self.thresholds.ambiguity
        )
        return Match(text, normalized, best, round(min(score, 1.0), 3), second,
                     round(second_score, 3), ambiguous=ambiguous, signs=signs)

    def _rank(self, normalized: str, calf_symptom: bool, content: bool) -> list[tuple[str, float]]:
        scores = self.scorer.scores(normalized)
        # red_flag comes from the explicit sign check alone: the scorer learnt
        # it from sign words, which the detector has already weighed in
        # context (negated, past, someone else's).
        scores.pop("red_flag", None)
        if calf_symptom:
            # A symptom of the calf, shin, Achilles or foot is what the line is
            # for: the answer is the closest calf intent, however unsure.
            scores.pop("out_of_scope", None)
        if content:
            # greeting, thanks and help mean "with nothing else".
            for social in ("greeting", "thanks", "help"):
                scores.pop(social, None)
        total = sum(scores.values()) or 1.0
        ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)[:2]
        ranked = [(k, v / total) for k, v in ranked]
        # No known word at all: nothing to rank, so nothing clears the fallback.
        return ranked + [("out_of_scope", 0.0)] * (2 - len(ranked))
