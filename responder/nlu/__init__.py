"""Understanding a message: the intents catalog, normalization, sign rules, the models.

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
from responder.nlu.matcher import (
    Match,
    Matcher,
    MessageReader,
    Thresholds,
    command_word,
    english_words,
)
from responder.nlu.model import StaleModelError, TriageModel
from responder.nlu.normalize import Normalizer
from responder.nlu.redflags import RedFlagDetector, SignHit

__all__ = [
    "CALF_INTENTS",
    "CHANNELS",
    "DEFAULT_VARIABLES",
    "LONGEST_VARIABLES",
    "Catalog",
    "EvalFileError",
    "Intent",
    "Match",
    "Matcher",
    "MessageReader",
    "Normalizer",
    "RedFlagDetector",
    "SignHit",
    "StaleModelError",
    "Thresholds",
    "TriageModel",
    "command_word",
    "english_words",
    "evaluate",
    "format_report",
    "load_catalog",
    "read_tsv",
]
