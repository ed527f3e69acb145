"""Which language the line answers in: the message's, the conversation's or the clinic's.

A conversation keeps its language: "ok", "2" or a Spanglish line says too
little to switch a Spanish speaker to English mid-conversation. Only an
explicit ESPAÑOL / ENGLISH, or a message of a few words that the language
model is very sure of, changes it. A first message sets it when the model is
fairly sure; otherwise the number's default (the clinic profile) applies.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence

from responder.nlu.matcher import Match, command_word

# Whole-message requests to change language, compared without accents.
SWITCH_WORDS = {
    "espanol": "es", "en espanol": "es", "spanish": "es", "in spanish": "es",
    "hablo espanol": "es", "espanol por favor": "es", "spanish please": "es",
    "english": "en", "in english": "en", "ingles": "en", "en ingles": "en",
    "english please": "en", "ingles por favor": "en",
}
# Template variables carry the number's languages ("es,en": the default first).
LANGUAGES_VARIABLE = "languages"
FIRST_SURE = 0.6  # a first message this sure of its language sets the conversation's
SWITCH_SURE = 0.9  # a later one must be this sure, and this long, to change it
SWITCH_MIN_WORDS = 3


def fold(text: str) -> str:
    """Drop accents: 'sí' -> 'si', 'español' -> 'espanol'."""
    if text.isascii():  # nothing to decompose
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def plain(text: str) -> str:
    """Return the whole-message command form without accents: 'Español!' -> 'espanol'."""
    return fold(command_word(text))


def switch_request(text: str, languages: Sequence[str]) -> str | None:
    """Return the language an explicit ESPAÑOL / ENGLISH message asks for, if we have it."""
    wanted = SWITCH_WORDS.get(plain(text))
    return wanted if wanted in languages else None


def follow_language(
    match: Match, current: str | None, default: str, languages: Sequence[str]
) -> str:
    """Return the language to answer this message in and keep for the conversation."""
    said = match.language if match.language in languages else None
    if current not in languages:
        return said if said and match.language_confidence >= FIRST_SURE else default
    long_enough = len(match.normalized.split()) >= SWITCH_MIN_WORDS
    if said and said != current and match.language_confidence >= SWITCH_SURE and long_enough:
        return said
    return str(current)


def offered_languages(variables: Mapping[str, str] | None, known: Sequence[str]) -> list[str]:
    """Return the languages a number offers (its default first) that the catalog has."""
    listed = (variables or {}).get(LANGUAGES_VARIABLE) or ""
    offered = [x for x in (v.strip() for v in listed.split(",")) if x in known]
    return offered or list(known[:1])
