"""Spanish in intents/es/: complete, within SMS limits, detected, and checked on load."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from responder.dialogue.respond import Responder
from responder.errors import IntentDataError
from responder.gsm import is_gsm7, segment_count
from responder.nlu.catalog import LONGEST_VARIABLES, ONE_SEGMENT, load_catalog

INTENTS = Path(__file__).resolve().parents[2] / "intents"
CATALOG = load_catalog(INTENTS)
SPANISH = CATALOG.localized("es")


def _longest() -> dict[str, str]:
    label = max((i.label for i in SPANISH.intents.values()), key=len)
    return {**LONGEST_VARIABLES, "option1": label, "option2": label}


def _sms_templates() -> list[tuple[str, str]]:
    texts = [(f"{i.id}.{k}", t) for i in SPANISH.intents.values()
             for k, t in i.replies.items() if k.startswith("sms")]
    texts += [(f"{i.id}.{c}.{k}", t) for i in SPANISH.intents.values()
              for c, replies in i.care_replies.items()
              for k, t in replies.items() if k.startswith("sms")]
    texts += [(f"{i.id}.callback.sms", i.callback_replies["sms"])
              for i in SPANISH.intents.values() if i.callback_replies]
    return texts + [(f"system.{n}", t["sms"]) for n, t in SPANISH.system.items()]


def test_every_intent_and_system_template_has_spanish() -> None:
    assert CATALOG.languages == ("en", "es")
    assert set(SPANISH.intents) == set(CATALOG.intents)
    assert set(SPANISH.system) == set(CATALOG.system)
    for intent_id, intent in SPANISH.intents.items():
        english = CATALOG.intents[intent_id]
        assert intent.care == english.care
        assert set(intent.replies) == set(english.replies)
        assert set(intent.care_replies) == set(english.care_replies)
        assert intent.examples
        if english.replies["sms"]:  # opt_out sends nothing in either language
            assert intent.replies["sms"] != english.replies["sms"]


@pytest.mark.parametrize(("name", "text"), _sms_templates())
def test_spanish_sms_fits_two_gsm7_segments(name: str, text: str) -> None:
    """intents/README.md: Spanish SMS leave out a, i, o, u accents to stay GSM-7."""
    rendered = text.format_map(_longest())
    assert is_gsm7(rendered), name
    limit = 1 if name.removeprefix("system.") in ONE_SEGMENT else 2
    assert segment_count(rendered) <= limit, name


def test_spanish_voice_and_api_keep_their_accents() -> None:
    voice = " ".join(i.replies["voice"] for i in SPANISH.intents.values())
    assert any(ch in voice for ch in "áíóú")


def test_spanish_calls_get_spanish_recognition_hints() -> None:
    from responder.dialogue.call_flow import speech_hints

    hints = speech_hints(SPANISH).split(", ")
    assert "pantorrilla" in hints and "calf" not in hints


def test_spanish_has_at_least_as_many_examples_as_english() -> None:
    for intent_id, english in CATALOG.intents.items():
        assert len(SPANISH.intents[intent_id].examples) >= len(english.examples), intent_id


def test_command_words_of_both_languages() -> None:
    commands, languages = CATALOG.commands(), CATALOG.command_languages()
    for word in ("parar", "cancelar", "detener", "baja"):
        assert commands[word] == "opt_out" and languages[word] == "es"
    assert commands["ayuda"] == "help" and commands["stop"] == "opt_out"
    assert languages["stop"] == "en"


@pytest.mark.parametrize(("text", "language"), [
    ("me duele la pantorrilla desde que sali a trotar el domingo", "es"),
    ("oiga una pregunta que tenis me recomienda para correr en asfalto", "es"),
    ("my calves are killing me after the hill repeats", "en"),
    ("PARAR", "es"),
    ("STOP", "en"),
    ("hola", "es"),
])
def test_the_message_language_is_detected(responder: Responder, text: str,
                                          language: str) -> None:
    assert responder.match(text).language == language


@pytest.mark.parametrize("text", ["1", "2", "911", "no", "ok", "  "])
def test_digits_and_shared_words_say_nothing_of_the_language(responder: Responder,
                                                             text: str) -> None:
    assert responder.match(text).language is None


@pytest.mark.parametrize(("text", "care"), [
    ("se me hincho la pantorrilla derecha y esta caliente y roja", "urgent"),
    ("me duele el pecho y me falta el aire despues de correr", "emergency"),
    ("mi pantorrilla no esta hinchada ni roja, solo tensa despues del entrenamiento", "self_care"),
])
def test_spanish_warning_signs_and_their_negation(responder: Responder, text: str,
                                                 care: str) -> None:
    assert responder.match(text).care == care


def test_spanish_reply_for_a_spanish_message(responder: Responder) -> None:
    answer = responder.answer("tengo un calambre en la pantorrilla ahorita mismo", "sms")
    assert answer.match.intent == "cramp_now" and answer.language == "es"
    assert answer.reply.text == SPANISH.intents["cramp_now"].replies["sms"].format_map(
        SPANISH.defaults)


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "intents"
    shutil.copytree(INTENTS, folder, ignore=shutil.ignore_patterns(".model.npz"))
    return folder


def _edit(path: Path, change: dict[str, object]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in change.items():
        target = data
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def test_a_missing_spanish_intent_file_stops_start_up(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "es" / "hydration.yaml").unlink()
    with pytest.raises(IntentDataError, match="hydration"):
        load_catalog(folder)


def test_a_spanish_sms_over_two_ucs2_segments_stops_start_up(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    accented = "Estire la pantorrilla despacio y respire; si no mejora, llame ahora mismo. " * 2
    _edit(folder / "es" / "cramp_now.yaml", {"replies.sms": accented.replace("mas", "más")
                                             + "Atención médica."})
    with pytest.raises(IntentDataError, match="segments"):
        load_catalog(folder)


def test_a_short_accented_spanish_sms_is_allowed(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _edit(folder / "es" / "thanks.yaml", {"replies.sms": "De nada. ¿Algo más? Aquí estamos."})
    assert load_catalog(folder).localized("es").intents["thanks"].replies["sms"].endswith(
        "estamos.")


def test_a_missing_spanish_system_template_stops_start_up(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "es" / "_system.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["templates"]["check"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(IntentDataError, match="check"):
        load_catalog(folder)


def test_spanish_rules_must_name_an_existing_sign(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "es" / "_red_flags.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["signs"].append({"name": "no_such_sign", "patterns": ["\\bzzz\\b"]})
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(IntentDataError, match="no_such_sign"):
        load_catalog(folder)


def test_a_spanish_shorthand_may_not_change_an_english_one(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _edit(folder / "es" / "_lexicon.yaml", {"abbreviations.pt": "punto"})
    with pytest.raises(IntentDataError, match="abbreviations.pt"):
        load_catalog(folder)
