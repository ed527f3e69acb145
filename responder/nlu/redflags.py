"""Find red-flag signs in a normalized message, with NegEx/ConText context.

This check runs before and apart from the fuzzy matcher, and a sign that is
present wins over every other intent. Context follows NegEx (Chapman 2001: a
trigger within a few words before or after the sign, scope closed by "but")
and ConText (Harkema 2009: experiencer and temporality). When unsure it
fires: only a clear negation, a clear past, or another person's sign
(while the sender talks about their own) is set aside.
"""

from __future__ import annotations

import bisect
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from responder.nlu.prefilter import LiteralScanner, WordList

Span = tuple[int, int]  # token indices, end exclusive
# English and Spanish (y/e, o/u, ni) conjunctions: people mix the two in one message.
# A comma standing alone (",(?<![^ ],)(?![^ ])" is "(?:^|(?<= )),(?= |$)" led by its
# character, which lets the regex engine skip ahead to each comma), or a conjunction.
_CLAUSE_JOINS = re.compile(r",(?<![^ ],)(?![^ ])|\b(?:and|or|y|e|o|u|ni)\b")
_SENTENCE_ENDS = re.compile(r"(?:^|(?<= ))[.?](?= |$)")
_QUESTION = re.compile(r"(?:^|(?<= ))\?(?= |$)")
_WORD_RUN = re.compile(r"\w+")
_TOKEN = re.compile(r"\S+")


@dataclass(frozen=True)
class SignHit:
    """One red-flag sign found in a message, and why it does or does not count."""

    name: str
    text: str
    # present, negated, historical, hypothetical, other_person, other_body_part, or
    # uncertain ("maybe a bit swollen, not sure"): the line asks rather than guesses.
    status: str
    care: str = "urgent"  # emergency or urgent, from the sign's rule in _red_flags.yaml
    fires_alone: bool = False  # unambiguous: urgent without the classifier's vote

    @property
    def present(self) -> bool:
        return self.status == "present"


def _phrase_regex(phrases: Iterable[str]) -> re.Pattern[str]:
    ordered = sorted({p.strip() for p in phrases if p.strip()}, key=len, reverse=True)
    if not ordered:
        return re.compile(r"(?!x)x")
    return re.compile(r"\b(?:" + "|".join(re.escape(p) for p in ordered) + r")\b")


class _Phrases:
    """Whole-word trigger phrases as one regex, skipped when no phrase can match.

    A phrase that begins and ends with a word character matches only where each
    of its words is a whole word of the text (the regex's \\b on both sides, and
    the phrase's own spaces inside). So when the text has no phrase's first word,
    or no phrase's last word, or no phrase's longest word, the scan is skipped.
    """

    def __init__(self, phrases: Iterable[str]) -> None:
        phrases = list(phrases)
        self.pattern = _phrase_regex(phrases)
        words = [_WORD_RUN.findall(p) for p in phrases if p.strip()]
        stripped = [p.strip() for p in phrases if p.strip()]
        whole = all(_WORD_RUN.fullmatch(p[0]) and _WORD_RUN.fullmatch(p[-1]) for p in stripped)
        # Empty: some phrase starts or ends with punctuation, so always scan.
        self.needed: tuple[frozenset[str], ...] = (
            frozenset(w[0] for w in words),
            frozenset(w[-1] for w in words),
            frozenset(max(w, key=len) for w in words),
        ) if whole else ()

    def find(self, tokens: _Tokens) -> list[Span]:
        """Return the token spans of the phrases found in the text."""
        for needed in self.needed:
            if needed.isdisjoint(tokens.words):
                return []
        return tokens.find(self.pattern)


class _PartWords:
    """Which body part a leg sign is attached to, by its nearest word on either side.

    "R knee swelling, no calf involvement" is about the knee though the calf is named:
    a local sign whose next word (past "my", "is", "left" ...) is an out-of-scope part
    and neither neighbour is a leg word is that part's. Only the next word counts, so
    "swelling behind my knee" stays the leg's.
    """

    _FILLER = frozenset({"is", "was", "are", "were", "my", "the", "his", "her", "a", "r", "l",
                         "right", "left", "very", "so", "really", "still", "bit", "got",
                         "looks", "feels", "mi", "la", "el", "derecha", "izquierda"})
    _PLACES = frozenset({"below", "under", "behind", "above", "from", "near", "to", "down",
                         "debajo", "detras", "bajo", "abajo", "arriba", "hasta", "desde"})

    def __init__(self, in_scope: WordList, out_scope: WordList) -> None:
        self._in, self._out = in_scope.words, out_scope.words

    def _next(self, words: list[str], index: int, step: int) -> int | None:
        while 0 <= index < len(words) and words[index] in self._FILLER:
            index += step
        return index if 0 <= index < len(words) else None

    def other_part_next_to(self, tokens: _Tokens, span: Span) -> bool:
        """True when the sign's nearest word is an out-of-scope part and no leg word is."""
        words = tokens.split
        if any(w in self._in for w in words[span[0]:span[1]]):
            return False
        before, after = self._next(words, span[0] - 1, -1), self._next(words, span[1], 1)
        near = [words[i] for i in (before, after) if i is not None]
        if any(w in self._in for w in near) or not any(w in self._out for w in near):
            return False
        # "my leg below the knee is swollen": the knee says where on the leg.
        if before is not None and words[before] in self._out:
            placed = self._next(words, before - 1, -1)
            if placed is not None and words[placed] in self._PLACES:
                return False
        # "swollen knee and calf": the leg is named right after the other part.
        return after is None or not any(w in self._in for w in words[after + 1:after + 3])


class _Tokens:
    """Maps character offsets of a space-joined text to token indices."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.split = text.split()  # the tokens in order, as span indices count them
        self._starts = [m.start() for m in _TOKEN.finditer(text)]
        self.words = frozenset(_WORD_RUN.findall(text))  # for _Phrases.find

    def span(self, start: int, end: int) -> Span:
        first = bisect.bisect_right(self._starts, start) - 1
        last = bisect.bisect_left(self._starts, end)
        return (max(first, 0), last)

    def find(self, pattern: re.Pattern[str]) -> list[Span]:
        return [self.span(m.start(), m.end()) for m in pattern.finditer(self.text)]


STATUSES = ("present", "negated", "historical", "hypothetical", "other_person",
            "other_body_part", "uncertain")


def sign_features(hits: Iterable[SignHit], names: tuple[str, ...]) -> np.ndarray:
    """Return the sign rules' verdict as model inputs.

    One column per context status (any sign found negated, past, ...), one per
    sign found present, and one for a present sign that fires alone.
    """
    vector = np.zeros(len(STATUSES) + len(names) + 1)
    for hit in hits:
        vector[STATUSES.index(hit.status)] = 1.0
        if hit.present:
            vector[len(STATUSES) + names.index(hit.name)] = 1.0
            if hit.fires_alone:
                vector[-1] = 1.0
    return vector


class RedFlagDetector:
    """Detect red-flag signs using the rules in intents/_red_flags.yaml."""

    def __init__(self, rules: Mapping[str, Any], lexicon: Mapping[str, Any]) -> None:
        patterns = [(sign, str(p)) for sign in rules.get("signs", []) for p in sign["patterns"]]
        self._scanner = LiteralScanner(p for _, p in patterns)
        self._signs = [
            (str(sign["name"]), str(sign.get("scope", "systemic")), re.compile(p),
             str(sign.get("care", "urgent")), bool(sign.get("fires_alone", False)))
            for sign, p in patterns
        ]
        self.sign_names = tuple(dict.fromkeys(str(s["name"]) for s in rules.get("signs", [])))
        self._risk_signs = frozenset(str(s["name"]) for s in rules.get("signs", [])
                                     if s.get("risk"))
        ctx = rules.get("context", {})
        self._window = int(ctx.get("window", 5))
        self._window_after = int(ctx.get("window_after", 3))
        self._neg_before = _Phrases(ctx.get("negation_before", []))
        self._neg_after = _Phrases(ctx.get("negation_after", []))
        # "dark urine? no": a sign asked and answered, as clinic notes and lists do.
        answers = _phrase_regex(ctx.get("negation_after_question", [])).pattern
        self._answered_no = re.compile(r"(?:^|(?<= ))\? " + answers)
        self._neg_sentence = _Phrases(ctx.get("negation_to_sentence_end", []))
        self._pseudo = _Phrases(ctx.get("pseudo", []))
        self._terminators = _Phrases(ctx.get("terminators", []))
        self._others = _Phrases(ctx.get("others", []))
        self._animals = _Phrases(ctx.get("animals", []))
        self._self = _Phrases(ctx.get("self", []))
        self._patients = _Phrases(ctx.get("patient_words", []))
        self._unsure_before = _Phrases(ctx.get("uncertain_before", []))
        self._unsure_after = _Phrases(ctx.get("uncertain_after", []))
        self._past_before = _Phrases(ctx.get("historical_before", []))
        self._hypothetical = _Phrases(ctx.get("hypothetical_before", []))
        self._past_after = _Phrases(ctx.get("historical_after", []))
        self._recurrent = _Phrases(ctx.get("recurrent", []))
        parts = lexicon.get("body_parts", {})
        self._in_scope = WordList(parts.get("in_scope", []))
        self._out_scope = WordList(parts.get("out_of_scope", []))
        self._part_words = _PartWords(self._in_scope, self._out_scope)

    def find(self, text: str) -> list[SignHit]:
        """Return every sign mention in the normalized text with its context status."""
        signs = self._signs
        matches = [(index, match) for index in self._scanner.candidates(text)
                   for match in signs[index][2].finditer(text)]
        if not matches:  # most messages: no token map, no context
            return []
        tokens = _Tokens(text)
        found: list[tuple[str, str, Span, str, str, bool]] = []
        for index, match in matches:
            name, scope, _, care, alone = signs[index]
            span = tokens.span(match.start(), match.end())
            found.append((name, scope, span, match.group(0), care, alone))
        sign_spans = [span for _, _, span, _, _, _ in found]
        context = _Context(self, tokens, sign_spans)
        only_other_part = self._out_scope.found_in(text) and not self._in_scope.found_in(text)
        statuses = _through_lists(tokens.split, [(s, context.status(s)) for s in sign_spans])
        hits = []
        for (name, scope, span, matched, care, alone), status in zip(found, statuses, strict=True):
            if status == "present" and scope == "local" and (
                    only_other_part or self._part_words.other_part_next_to(tokens, span)):
                status = "other_body_part"
            if status == "uncertain" and alone:  # chest pain, breathing: never a maybe
                status = "present"
            if status == "present" and not alone and context.recurs(span):
                status = "historical"
            hits.append(SignHit(name, matched.strip(" ,"), status, care, alone))
        return _risk_follows_the_signs(hits, self._risk_signs)

    def fires(self, text: str) -> bool:
        """Return True when any sign in the normalized text is present."""
        return any(hit.present for hit in self.find(text))


class _Context:
    """Context triggers found once per message, then asked per sign."""

    def __init__(self, rules: RedFlagDetector, tokens: _Tokens, sign_spans: list[Span]) -> None:
        pseudo = rules._pseudo.find(tokens)
        blocked = sign_spans + pseudo

        def free(spans: list[Span]) -> list[Span]:
            return [s for s in spans if not any(_overlap(s, b) for b in blocked)]

        self.rules = rules
        self.neg_before = free(rules._neg_before.find(tokens))
        self.neg_after = free(rules._neg_after.find(tokens))
        self.questions: list[Span] = []
        if "?" in tokens.text:  # both need a question mark
            self.neg_after += tokens.find(rules._answered_no)
            self.questions = tokens.find(_QUESTION)
        # A clause ends the scope (ConText's termination): a full stop (kept by
        # the normalizer as "."), or a comma, "and", "or" or a terminator word
        # unless a sign follows at once, as in a list: "no pain, swelling or redness".
        self.words = words = tokens.split
        sign_starts = {span[0] for span in sign_spans if not opens_with_negation(words, span)}
        joins = [
            span for span in tokens.find(_CLAUSE_JOINS) if span[1] not in sign_starts
        ]
        ends = tokens.find(_SENTENCE_ENDS)
        # "Denies CP, SOB, calf swelling, recent travel, numbness": a clinic's list runs
        # to the end of its sentence (ConText's scope), through commas and nouns alike.
        self.sentence_ends = free(rules._terminators.find(tokens)) + ends
        self.terminators = self.sentence_ends + free(joins)
        self.neg_sentence = free(rules._neg_sentence.find(tokens))
        self.past_before = rules._past_before.find(tokens)
        self.hypothetical = rules._hypothetical.find(tokens)
        self.past_after = rules._past_after.find(tokens)
        self.recurrent = rules._recurrent.find(tokens)
        self.others = rules._others.find(tokens)
        self.animals = rules._animals.find(tokens)
        self.self_mentions = rules._self.find(tokens)
        self.talks_about_self = bool(self.self_mentions) and not rules._patients.find(tokens)
        self.unsure_before = rules._unsure_before.find(tokens)
        self.unsure_after = rules._unsure_after.find(tokens)

    def status(self, span: Span) -> str:
        window, after = self.rules._window, self.rules._window_after
        # A sign that opens with its own negation is a statement of its own: "niega
        # disnea y no puede caminar" denies the first, not the second.
        fresh = opens_with_negation(self.words, span)
        if (not fresh and self._before(self.neg_before, span, window)) or self._after(
                self.neg_after, span, after):
            return "negated"
        if not fresh and self._before(self.neg_sentence, span, sys.maxsize, self.sentence_ends):
            return "negated"
        if self._before(self.past_before, span, window + 3) or self._after(
            self.past_after, span, window
        ):
            return "historical"
        if self._before(self.hypothetical, span, window):
            return "hypothetical"
        if self._before(self.unsure_before, span, window) or self._after(
            self.unsure_after, span, 3
        ) or self._after(self.questions, span, after):
            return "uncertain"
        if self._animal_before(span) or (
                self.talks_about_self and self._before(self.others, span, window)):
            return "other_person"
        return "present"

    def recurs(self, span: Span) -> bool:
        """A sign said to come and go ("sometimes my foot goes numb", "parestesias
        intermitentes") is a chronic pattern, read like a history: safety.md puts
        exertional numbness at "see a GP soon". Never for a sign that fires alone:
        intermittent chest pain on runs is still chest pain."""
        window = self.rules._window
        return self._before(self.recurrent, span, window) or self._after(
            self.recurrent, span, window)

    def _animal_before(self, span: Span) -> bool:
        """An animal earlier in the sentence owns the sign ("my dog limps and his paw is
        swollen") unless the sender speaks of themself in between ("..., my calf is")."""
        owners = [t for t in self.animals
                  if not any(t[1] <= m[0] and m[1] <= span[1] for m in self.self_mentions)]
        return self._before(owners, span, self.rules._window + 5, self.sentence_ends)

    def _before(self, triggers: list[Span], span: Span, window: int,
                stops: list[Span] | None = None) -> bool:
        return any(
            t[1] <= span[0] and span[0] - t[1] <= window
            and not self._closed(t[1], span[0], stops)
            for t in triggers
        )

    def _after(self, triggers: list[Span], span: Span, window: int) -> bool:
        return any(
            t[0] >= span[1] and t[0] - span[1] <= window and not self._closed(span[1], t[0])
            for t in triggers
        )

    def _closed(self, start: int, end: int, stops: list[Span] | None = None) -> bool:
        """Return True when a terminator ("but"; or one of `stops`) stands between two
        token positions."""
        return any(start <= t[0] and t[1] <= end
                   for t in (self.terminators if stops is None else stops))


_LIST_JOINS = frozenset({",", "and", "or", "nor", "y", "e", "o", "u", "ni"})
_OWN_NEGATION = frozenset({"no", "not", "cannot", "unable", "never", "nunca", "sin"})
_AUXILIARIES = frozenset({"could", "can", "will", "do", "did", "does"})


def opens_with_negation(words: list[str], span: Span) -> bool:
    """True for a sign whose own words start with a negation: "cannot walk", "no puedo
    orinar", "not sweating". Such a sign says something new, so a negation before it
    does not reach it through a list ("numb groin and can't pee" is not "no X, Y")."""
    first = words[span[0]] if span[0] < len(words) else ""
    second = words[span[0] + 1] if span[0] + 1 < len(words) else ""
    return first in _OWN_NEGATION or (first in _AUXILIARIES and second == "not")


def _risk_follows_the_signs(hits: list[SignHit], risks: frozenset[str]) -> list[SignHit]:
    """A risk context (a flight, surgery, a cast) is asked about, not urgent, when the
    message's symptom signs are all negated, doubted or someone else's.

    "Calf a bit puffy? after the flight" and "tight after the flight but not swollen,
    not warm" are the sender weighing a clot, not describing one; "calf aches since the
    flight", with no symptom sign to read away, keeps the risk as the sign it is.
    """
    symptoms = [h.status for h in hits if h.name not in risks]
    if not symptoms or "present" in symptoms:
        return hits
    return [replace(h, status="uncertain") if h.name in risks and h.present else h
            for h in hits]


def _through_lists(words: list[str], spans: list[tuple[Span, str]]) -> list[str]:
    """Carry a negation along a list of signs: "denies chest pain, SOB, hemoptysis".

    NegEx's five-word window would leave the end of a long list outside the
    scope; a sign joined to a negated one by only commas, "and" or "or" is
    negated too (Chapman 2001 lists conjunctions as scope continuations).
    """
    statuses = [status for _, status in spans]
    order = sorted(range(len(spans)), key=lambda i: spans[i][0])
    for previous, current in zip(order, order[1:], strict=False):
        gap = words[spans[previous][0][1]:spans[current][0][0]]
        if (statuses[current] == "present" and statuses[previous] == "negated"
                and all(word in _LIST_JOINS for word in gap)
                and not opens_with_negation(words, spans[current][0])):
            statuses[current] = "negated"
    return statuses


def _overlap(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]
