"""Understanding a message: the intents catalog, normalization, red flags, scoring, matching.

Plain Python over the intents/ data: no Flask, no web request, no database.
`Matcher.match(text)` is the entry point; `evaluate` measures it on a labelled TSV.
"""

from responder.nlu.catalog import (
    CALF_INTENTS,
    CHANNELS,
    DEFAULT_VARIABLES,
    LONGEST_VARIABLES,
    Catalog,
    Intent,
    load_catalog,
)
from responder.nlu.evaluation import EvalFileError, evaluate, format_report, read_tsv
from responder.nlu.matcher import Match, Matcher, Thresholds, command_word, english_words
from responder.nlu.normalize import Normalizer
from responder.nlu.redflags import RedFlagDetector, SignHit
from responder.nlu.scoring import IntentScorer

__all__ = [
    "CALF_INTENTS",
    "CHANNELS",
    "DEFAULT_VARIABLES",
    "LONGEST_VARIABLES",
    "Catalog",
    "EvalFileError",
    "Intent",
    "IntentScorer",
    "Match",
    "Matcher",
    "Normalizer",
    "RedFlagDetector",
    "SignHit",
    "Thresholds",
    "command_word",
    "english_words",
    "evaluate",
    "format_report",
    "load_catalog",
    "read_tsv",
]
