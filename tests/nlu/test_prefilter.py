"""Skipping rules by their required literals must change nothing."""

import re

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from responder.nlu.catalog import load_catalog
from responder.nlu.evaluation import read_tsv
from responder.nlu.prefilter import LiteralScanner, RuleSet, required_literals
from tests.conftest import DATA, INTENTS

LEXICON = yaml.safe_load((INTENTS / "_lexicon.yaml").read_text(encoding="utf-8"))
SIGNS = yaml.safe_load((INTENTS / "_red_flags.yaml").read_text(encoding="utf-8"))["signs"]
PATTERNS = [p for sign in SIGNS for p in sign["patterns"]] + [
    p for p, _ in LEXICON["phrases"] + LEXICON["speech"]
]


def _texts() -> list[str]:
    catalog = load_catalog(INTENTS)
    texts = [e for i in catalog.intents.values() for e in i.examples]
    texts += [e.text for e in read_tsv(DATA / "dev.tsv")]
    return [t.lower() for t in texts]


TEXTS = _texts()


SCANNER = LiteralScanner(PATTERNS)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_guard_never_hides_a_match(pattern: str) -> None:
    compiled, guard = re.compile(pattern), SCANNER.guards[pattern]
    for text in TEXTS:
        if compiled.search(text):
            assert guard <= SCANNER.present(text), (pattern, text)


@pytest.mark.parametrize("kind", ["phrases", "speech"])
def test_rule_set_equals_plain_substitution(kind: str) -> None:
    rules = LEXICON[kind]
    ruleset = RuleSet(rules)
    for text in TEXTS:
        plain = text
        for pattern, replacement in rules:
            plain = re.sub(pattern, replacement, plain)
        assert ruleset.apply(text) == plain


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz '/+&0123456789", max_size=60))
def test_guard_on_random_text(text: str) -> None:
    present = SCANNER.present(text)
    for pattern in PATTERNS:
        if re.search(pattern, text):
            assert SCANNER.guards[pattern] <= present, (pattern, text)


def test_required_literals_of_simple_patterns() -> None:
    assert required_literals(r"\bswollen\b") == (frozenset({"swollen"}),)
    assert required_literals(r"(hot|warm) and (red|sore)") == (
        frozenset({"hot", "warm"}), frozenset({" and "}), frozenset({"red", "sore"}),
    )
    assert required_literals(r"\w+") == ()


def test_required_literals_join_fixed_alternatives_and_repeats() -> None:
    # A few fixed strings in a row are one set of their combinations, and a
    # repeated letter's first copy joins the literal before it: both make rules
    # that need "bi"/"vi" or "ki" selective enough to skip.
    assert required_literals(r"\bto\s+(?:b|v)i(?:ll|y)o\b") == (
        frozenset({"to"}), frozenset({"billo", "biyo", "villo", "viyo"}),
    )
    assert required_literals(r"a\s?kil+e[sz]") == (
        frozenset({"a"}), frozenset({"kil"}), frozenset({"les", "lez"}),
    )
    assert required_literals(r"ab{2}c") == (frozenset({"abbc"}),)
