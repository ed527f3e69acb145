"""Sort a message into one intent of the contract, with its care level.

In the order they apply:
1. opt_out / opt_in / help command words are exact matches on the whole
   message, never guesses (Twilio's opt-out keywords are single words).
2. The red-flag model (word and character n-grams plus the sign rules of
   intents/_red_flags.yaml as features: sign found, negated, past,
   hypothetical, someone else's) gives a calibrated probability. At or above
   `urgent`, with a sign the rules found present, the message is red_flag
   (emergency when one of those signs is an emergency sign). At or above
   `check` otherwise, the line asks one yes/no check question: the model
   suspects a sign that no rule names, or a rule names one the model doubts.
   A sign marked fires_alone (chest pain, coughing blood, cannot breathe)
   that is present is red_flag whatever the model says. When the rules find
   no sign word at all, the learned models may answer urgent on their own
   (`learned_urgent`, `text_urgent`): a sign in words no pattern has.
3. The intent model ranks the other intents; the best is the answer, or the
   best non-urgent answer behind a check question. When the top two calf
   intents are within `ambiguity` the reply asks which one was meant.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from responder.nlu.catalog import CALF_INTENTS, Catalog
from responder.nlu.model import (
    RED_FLAG,
    StaleModelError,
    TriageModel,
    catalog_fingerprint,
    fit_triage_model,
    load_model,
    save_model,
    stored_words,
)
from responder.nlu.normalize import Normalizer, fold, has_clause_marks
from responder.nlu.redflags import RedFlagDetector, SignHit, sign_features

_EDGE_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$")
_CLAUSE_WORDS = re.compile(r" [,.?](?= |$)")  # the normalizer's clause marks, for the models
_ASCII_LETTER = re.compile(r"[A-Za-z]")
# Sign statuses that say a sign word is not the sender's now (see _read_away).
_READ_AWAY = frozenset({"negated", "other_person", "other_body_part", "hypothetical"})
_LOG = logging.getLogger(__name__)
# An unseen one-word message ("holis") is language evidence only this clearly.
ONE_UNSEEN_WORD_SURE = 0.95
MODEL_FILE = ".model.npz"  # beside the intents it was fitted on; see model_path()


def command_word(text: str) -> str:
    """Return the message as one lower-case word or phrase without edge punctuation."""
    return " ".join(_EDGE_PUNCTUATION.sub("", text.strip().casefold()).split())


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
    reason: str = "model"
    signs: tuple[SignHit, ...] = field(default_factory=tuple)
    care: str = "none"
    red_flag_probability: float = 0.0
    # The message's language and how sure the language model is; None when the
    # message says nothing about it (empty, digits only).
    language: str | None = None
    language_confidence: float = 0.0

    @property
    def check(self) -> bool:
        """True when the line should ask the check question before answering."""
        return self.care == "check"

    @property
    def present_signs(self) -> tuple[str, ...]:
        """Names of the warning signs found present, for staff and the logs."""
        return tuple(dict.fromkeys(s.name for s in self.signs if s.present))


@dataclass(frozen=True)
class Thresholds:
    """Where the calibrated probabilities are trusted; all are configuration.

    urgent and check were chosen on tests/data/dev*.tsv for red-flag recall
    (README, "How a message is matched"); fallback sends a message no intent explains well to
    out_of_scope; ambiguity is Rasa's default margin.
    """

    fallback: float = 0.25
    ambiguity: float = 0.1
    urgent: float = 0.6
    check: float = 0.2
    # The words-only red-flag model's bar for the check question: a sign the rules
    # have no pattern for (a new lay word, another language) still gets asked about.
    text_check: float = 0.5
    # Urgent without a rule: both red-flag models (with and without the sign features)
    # this sure and no sign word at all, so nothing the rules read away or doubt: a
    # stroke, PAD pain at rest, a tendon gone in words no pattern has. Above 1 is off;
    # never below `urgent`, so a cautious urgent threshold holds for this path too.
    learned_urgent: float = 0.85
    # ... or the words-only model alone this sure (the rules having found no sign word,
    # it is the one that reads the sentence; the sign-feature model mostly learned
    # "no sign found, no red flag").
    text_urgent: float = 0.95
    # A sign the check question itself asks about (`asked: true` in _red_flags.yaml:
    # a swollen, hot or red calf, a pop, cannot walk, chest pain, breathing) needs this
    # much for the urgent reply without asking: below it, asking loses nothing, as the
    # question names the sign. Other signs keep `urgent`: the question would not
    # reveal them. Never below `urgent`.
    asked_urgent: float = 0.8


def english_words(min_count: int = 100, spanish_forms: int = 30_000) -> frozenset[str]:
    """Return common English and Spanish words, which the speller must leave alone.

    Spanish words are folded like the messages ("dolía" -> "dolia"): without them
    the speller would turn "amortiguada" into a sign word, "amoratada".
    pyspellchecker's Spanish list has lemmas but few inflected forms ("duele",
    "suda", "tareas" are missing), so the speller turned "no suda" into "no
    sudan" and "tareas" into "tardes"; wordfreq's most frequent Spanish words,
    drawn from subtitles and social media, are the forms people type. Only
    words of 4+ letters: the short ones there include stretched words ("soo").
    """
    import wordfreq
    from spellchecker import SpellChecker

    words = set()
    for language in ("en", "es"):
        counts = SpellChecker(language=language, distance=1).word_frequency.dictionary
        words |= {fold(w) for w, c in counts.items() if c >= min_count and w.isalpha()}
    words |= {fold(w) for w in wordfreq.top_n_list("es", spanish_forms)
              if len(w) >= 4 and w.isalpha()}
    return frozenset(words)


def model_path(catalog: Catalog) -> Path:
    """Return the default model file: beside the intents it is fitted on."""
    return catalog.directory / MODEL_FILE


class MessageReader:
    """What the models read from a message: normalized words and the sign rules' verdict."""

    def __init__(self, catalog: Catalog, english: frozenset[str] | None = None) -> None:
        self.english = english if english is not None else english_words()
        base = Normalizer(catalog.lexicon, self.english)
        # How many examples of each language use each word: the speller's vocabulary,
        # and the one-word language evidence (word_languages), from one pass.
        self.word_counts: dict[str, Counter[str]] = {}
        for text, _, language in catalog.examples():
            self.word_counts.setdefault(language, Counter()).update(set(base.clean(text)))
        vocabulary = {w for counts in self.word_counts.values() for w in counts}
        self.example_words = frozenset(vocabulary)
        vocabulary |= {str(w) for w in catalog.lexicon.get("content_words", [])}
        self.normalizer = base.with_vocabulary(vocabulary)
        self.detector = RedFlagDetector(catalog.red_flags, catalog.lexicon)

    def read(self, text: str) -> tuple[str, list[SignHit]]:
        """Return the normalized text and the signs found (clause by clause)."""
        clauses = self.normalizer.normalize(text, clauses=True)
        words = _CLAUSE_WORDS.sub("", clauses) if has_clause_marks(clauses) else clauses
        return words, self.detector.find(clauses)

    def featurize(self, text: str) -> tuple[str, np.ndarray]:
        """Return the text the models read and the sign-rule features."""
        text, hits = self.read(text)
        return text, sign_features(hits, self.detector.sign_names)


class Matcher:
    """The message reader and the fitted models; match() is cheap."""

    def __init__(
        self,
        catalog: Catalog,
        thresholds: Thresholds | None = None,
        english: frozenset[str] | None = None,
        model_file: Path | str | None = None,
    ) -> None:
        self.catalog = catalog
        self.thresholds = thresholds or Thresholds()
        self._commands = catalog.commands()
        self._command_languages = catalog.command_languages()
        # A command is one word with a little punctuation; longer texts skip the lookup.
        self._longest_command = 8 + max((len(c) for c in self._commands), default=0)
        path = Path(model_file or model_path(catalog))
        self.reader = MessageReader(catalog, english if english is not None else stored_words(path))
        self.normalizer = self.reader.normalizer
        self.detector = self.reader.detector
        self.model = load_or_fit(catalog, self.reader, path)
        # Built now, not on the first message: under gunicorn's preload_app that is
        # before the fork, so the workers share its arrays' pages instead of each
        # making its own copy.
        self.joint = self.model.joint
        self._one_word_languages = word_languages(self.reader.word_counts)
        self._asked = frozenset(str(s["name"]) for s in catalog.red_flags.get("signs", [])
                                if s.get("asked"))

    def command(self, text: str) -> str | None:
        """Return the intent of an exact command word ("STOP", " help! "), else None."""
        if len(text) > self._longest_command and len(text.strip()) > self._longest_command:
            return None
        return self._commands.get(command_word(text))

    def match(self, text: str) -> Match:
        """Classify one message."""
        command = self.command(text)
        if command:
            care = self.catalog.intents[command].care
            language = self._command_languages.get(command_word(text))
            return Match(text, text.strip().casefold(), command, 1.0, reason="command", care=care,
                         language=language, language_confidence=1.0)
        normalized, hits = self.reader.read(text)
        if not normalized:
            return Match(text, normalized, "out_of_scope", 1.0, reason="empty")
        model = self.model
        columns, sublinear = model.vocabulary.counts(normalized)
        features = sign_features(hits, self.detector.sign_names) if hits else None
        verdict = self.joint.score(columns, sublinear, features)
        language, sure = self._language(normalized, columns, verdict.language)
        calm, urgency = verdict.intent, verdict.red_flag
        first, runner = _top_two(calm)
        best, second = model.intent.classes[first], model.intent.classes[runner]
        score, second_score = calm[first], calm[runner]
        signs, urgency = tuple(hits), round(urgency, 4)
        present = [h for h in hits if h.present]
        if any(h.fires_alone for h in present) or (present and urgency >= self._bar(present)) \
                or (not hits and self._learned_urgent(urgency, verdict.text_red_flag)):
            emergency = any(h.care == "emergency" for h in present)
            return Match(text, normalized, RED_FLAG, round(urgency, 3), best, round(score, 3),
                         reason="red_flag", signs=signs,
                         care="emergency" if emergency else "urgent",
                         red_flag_probability=urgency, language=language, language_confidence=sure)
        if score < self.thresholds.fallback:
            best, score = "out_of_scope", 1.0 - score
        care = self.catalog.intents[best].care
        unsure = any(h.status == "uncertain" for h in hits)
        if unsure or urgency >= self.thresholds.check or (
                verdict.text_red_flag >= self.thresholds.text_check and not _read_away(hits)):
            care = "check"
        ambiguous = (
            care != "check" and best in CALF_INTENTS and second in CALF_INTENTS
            and score - second_score < self.thresholds.ambiguity
        )
        return Match(text, normalized, best, round(score, 3), second, round(second_score, 3),
                     ambiguous=ambiguous, signs=signs, care=care, red_flag_probability=urgency,
                     language=language, language_confidence=sure)

    def _bar(self, present: list[SignHit]) -> float:
        """The red-flag probability for the urgent reply: higher when the check question
        asks about every sign found, so a doubtful model asks instead of guessing."""
        urgent = self.thresholds.urgent
        if all(h.name in self._asked for h in present):
            return max(self.thresholds.asked_urgent, urgent)
        return urgent

    def _learned_urgent(self, urgency: float, words_only: float) -> bool:
        """Urgent on the models' word alone (no sign word found): both sure, or the
        words-only model very sure; never below the urgent threshold."""
        floor = self.thresholds.urgent
        both = min(urgency, words_only) >= max(self.thresholds.learned_urgent, floor)
        return both or words_only >= max(self.thresholds.text_urgent, floor)

    def _language(
        self, normalized: str, columns: np.ndarray, probabilities: tuple[float, ...] | None
    ) -> tuple[str | None, float]:
        """Return the likelier language and its probability; None when the text says
        nothing of it: digits, or one word both languages use ("no", "ok")."""
        model = self.model.language
        if model is None or probabilities is None:
            return self.catalog.language, 1.0
        if not len(columns) or not _has_letter(normalized):
            return None, 0.0
        best = max(range(len(probabilities)), key=probabilities.__getitem__)  # first of ties
        language, sure = model.classes[best], round(probabilities[best], 3)
        if " " in normalized:
            return language, sure
        # One word: a word of the examples counts only when one language owns it; a
        # word no example has ("holis", "quiubo") by its letters, when they are clear.
        one = self._one_word_languages.get(normalized)
        if one:
            return one, 1.0
        unseen = normalized not in self.reader.example_words
        return (language, sure) if unseen and sure >= ONE_UNSEEN_WORD_SURE else (None, 0.0)


def _top_two(probabilities: tuple[float, ...]) -> tuple[int, int]:
    """Return the indices of the two likeliest classes, as np.argsort(p)[::-1][:2] orders
    them (a tie puts the later class first); sorting a dozen floats in Python is cheaper
    than numpy's call overhead."""
    ascending = sorted(range(len(probabilities)), key=probabilities.__getitem__)
    return ascending[-1], ascending[-2]


def _has_letter(text: str) -> bool:
    """True when any character is a letter (str.isalpha); one regex scan for ASCII text."""
    if text.isascii():
        return _ASCII_LETTER.search(text) is not None
    return any(ch.isalpha() for ch in text)


def _read_away(hits: Iterable[SignHit]) -> bool:
    """True when the sign rules found sign words and read every one away: negated,
    someone else's, another body part's, or asked about in theory.

    The words-only model reads the same words without that context, so its alarm is
    then no reason for the check question; it is there for signs the rules have no
    pattern for. A past sign is not read away: "a cut last week, cramps now" is the
    sign, and a history is the context most often misread.
    """
    statuses = {h.status for h in hits}
    return bool(statuses) and statuses <= _READ_AWAY


def word_languages(counts: Mapping[str, Counter[str]], share: float = 0.1) -> dict[str, str]:
    """Map each example word to its language when the other languages use it rarely.

    `counts` is how many examples of each language use each word. A one-word
    message is language evidence only through such a word: "hola" is Spanish,
    but "no" and "ok" are written in both and say nothing.
    """
    words: dict[str, str] = {}
    for language, counter in counts.items():
        others = [c for lang, c in counts.items() if lang != language]
        for word, count in counter.items():
            if all(other[word] <= share * count for other in others):
                words[word] = language
    return words


def train_model(catalog: Catalog, reader: MessageReader, path: Path) -> TriageModel:
    """Fit the model on the catalog and store it; a read-only folder only logs."""
    started = time.perf_counter()
    model = fit_triage_model(catalog, reader.featurize)
    try:
        save_model(model, path, reader.english)
    except OSError as exc:  # e.g. a read-only intents folder: fit again next start
        _LOG.warning("model_not_saved", extra={"path": str(path), "error": str(exc)})
    _LOG.info("model_fitted", extra={"seconds": round(time.perf_counter() - started, 2)})
    return model


def load_or_fit(catalog: Catalog, reader: MessageReader, path: Path) -> TriageModel:
    """Load the model file for these intents, or fit one now and try to save it."""
    try:
        return load_model(path, catalog_fingerprint(catalog))
    except StaleModelError as exc:
        _LOG.warning("model_refit", extra={"reason": str(exc)})
    return train_model(catalog, reader, path)
