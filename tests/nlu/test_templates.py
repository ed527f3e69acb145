"""Every reply template: GSM-7 only, two segments at most, readable aloud."""

import re

import pytest

from responder.gsm import MAX_SMS_CHARS, is_gsm7, segment_count
from responder.nlu.catalog import LONGEST_VARIABLES, load_catalog
from tests.conftest import INTENTS

CATALOG = load_catalog(INTENTS)
TEMPLATES = [
    (f"{intent.id}.{key}", key, text)
    for intent in CATALOG.intents.values() for key, text in intent.replies.items()
] + [
    (f"system.{name}.{key}", key, text)
    for name, channels in CATALOG.system.items() for key, text in channels.items()
]


@pytest.mark.parametrize(("name", "channel", "text"), TEMPLATES, ids=[t[0] for t in TEMPLATES])
def test_template_is_gsm7_and_fits(name: str, channel: str, text: str) -> None:
    rendered = text.format_map(LONGEST_VARIABLES)
    assert is_gsm7(rendered), name
    if channel.startswith("sms"):
        assert len(rendered) <= MAX_SMS_CHARS, name
        assert segment_count(rendered) <= 2, name


VOICE = [(n, t) for n, c, t in TEMPLATES if c == "voice"]


@pytest.mark.parametrize(("name", "text"), VOICE, ids=[v[0] for v in VOICE])
def test_voice_template_reads_well_aloud(name: str, text: str) -> None:
    rendered = text.format_map(LONGEST_VARIABLES | {"clinic_phone": "your doctor or clinic"})
    assert not re.search(r"https?://|www\.|[/\\()\[\]<>#*_~|@&%]", rendered), name
    assert not re.search(r"\b(e\.g|i\.e|etc|approx|min|mins|hrs|OTC|PT|ER|GP)\b", rendered), name
    # About 150 spoken words a minute: 30 seconds is some 75 words.
    assert len(rendered.split()) <= 80, name


def test_gsm7_rejects_what_would_force_ucs2() -> None:
    for text in ("it’s", "a — b", "ok 👍", "…"):
        assert not is_gsm7(text)
    assert segment_count("a" * 160) == 1
    assert segment_count("a" * 161) == 2
    assert segment_count("a" * 306) == 2


# The words by which each language's check question names a sign marked `asked`.
ASKED_WORDS = {
    "en": {"swelling": "swollen", "hot_calf": "hot", "red_calf": "red", "pop_or_tear": "pop",
           "cannot_walk": "walk", "chest_pain": "chest pain", "breathing": "breathing"},
    "es": {"swelling": "hinchada", "hot_calf": "caliente", "red_calf": "roja",
           "pop_or_tear": "chasquido", "cannot_walk": "caminar",
           "chest_pain": "dolor de pecho", "breathing": "aire"},
}


@pytest.mark.parametrize("language", sorted(ASKED_WORDS))
def test_the_check_question_names_every_sign_marked_asked(language: str) -> None:
    """A sign marked `asked` is asked about rather than answered while the model is
    unsure: only safe when the question really names it."""
    asked = {s["name"] for s in CATALOG.red_flags["signs"] if s.get("asked")}
    words = ASKED_WORDS[language]
    assert asked <= set(words), f"name the words for {asked - set(words)} here"
    question = CATALOG.localized(language).system["check"]["sms"].lower()
    for sign in sorted(asked):
        assert words[sign] in question, (language, sign)
