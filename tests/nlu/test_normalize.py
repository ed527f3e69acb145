"""Normalization: case, Unicode, emoji, shorthand, spelling and speech slips."""

import csv

import pytest

from responder.dialogue.respond import Responder
from tests.conftest import DATA


def _cases() -> list[tuple[str, str]]:
    with (DATA / "normalize_cases.tsv").open(encoding="utf-8", newline="") as handle:
        return [(r["raw"], r["normalized"]) for r in csv.DictReader(handle, delimiter="\t")]


@pytest.mark.parametrize(("raw", "expected"), _cases())
def test_normalize(responder: Responder, raw: str, expected: str) -> None:
    assert responder.matcher.normalizer.normalize(raw) == expected


def test_real_english_words_are_not_corrected(responder: Responder) -> None:
    # "worse" is one edit from "horse" (as in charley horse) but is a real word.
    assert responder.matcher.normalizer.normalize("worse") == "worse"


def test_emoji_without_meaning_are_dropped(responder: Responder) -> None:
    assert responder.matcher.normalizer.normalize("😭😭😭") == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("calf puffy? not sure", "calf puffy ? not sure"),
        ("calf swollen?? help!", "calf swollen . help"),
        ("is it swollen?", "is it swollen ?"),
        ("swelling, ? maybe", "swollen ? maybe"),
        ("Pt c/o tightness, ?mild swelling",
         "patient complains of tightness , possible mild swollen"),
    ],
)
def test_clause_marks_keep_a_single_question(responder: Responder, raw: str,
                                             expected: str) -> None:
    """One "?" is a question the sign rules read as doubt; "??" only presses a point."""
    assert responder.matcher.normalizer.normalize(raw, clauses=True) == expected
