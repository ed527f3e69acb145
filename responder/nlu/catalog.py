"""Load and validate the intents/ folder once, at start-up.

Clinics edit these YAML files, not Python, so every mistake must stop
start-up with the file and field named instead of surfacing mid-conversation.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from responder.errors import IntentDataError
from responder.gsm import MAX_SMS_CHARS, SINGLE_SEGMENT, non_gsm7_chars, segment_count
from responder.nlu.rule_merge import merged_file

# libyaml's safe loader when PyYAML was built with it (the wheels are): the same
# documents, parsed several times faster, which matters with ~8,000 examples.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# The public contract (../shared/intent-contract.md): every id must have a file.
CONTRACT_INTENTS = (
    "cramp_now", "post_run_tightness", "shoe_question", "chronic_pain", "red_flag",
    "prevention", "hydration", "medication", "greeting", "help", "thanks",
    "opt_out", "opt_in", "out_of_scope", "handoff",
)
CALF_INTENTS = frozenset(CONTRACT_INTENTS[:8])
CHANNELS = ("sms", "voice", "api")
# System templates that must fit one SMS segment (160 GSM-7 characters).
ONE_SEGMENT = frozenset({"check"})
# Care levels, most urgent first (../shared/intent-contract.md, "Care levels").
CARE_LEVELS = ("emergency", "urgent", "check", "soon", "self_care", "none")
REPLY_KEYS = ("sms", "sms_more", "voice", "api")
# The intents/ files are English; each other language is a folder beside them
# (intents/es/) with the same intent files: its label, examples and replies.
BASE_LANGUAGE = "en"
LANGUAGES = ("en", "es")
TEMPLATE_VARIABLES = frozenset(
    {"clinic_name", "clinic_phone", "emergency_number", "option1", "option2", "callback_when"}
)
DEFAULT_VARIABLES: Mapping[str, str] = {
    "clinic_name": "CalfLine",
    "clinic_phone": "your doctor or clinic",
    "emergency_number": "911",
    "callback_when": "as soon as they can",
}
# Worst case we accept in a clinic profile; SMS templates must still fit.
LONGEST_VARIABLES: Mapping[str, str] = {
    "clinic_name": "N" * 24,
    "clinic_phone": "+1 555 555 5555",
    "emergency_number": "911",
    "option1": "tightness that keeps coming back",
    "option2": "tightness that keeps coming back",
    # When a clinic calls back (responder/frontdesk/hours.py): free-text hours of up to
    # 40 characters are quoted (read aloud too: no brackets); "on Wednesday from 10:30am"
    # is shorter.
    "callback_when": "during opening hours, " + "N" * 40,
}


@dataclass(frozen=True)
class Intent:
    """One intent file: its examples and reviewed reply templates."""

    id: str
    label: str
    keywords: tuple[str, ...]
    examples: tuple[str, ...]
    replies: Mapping[str, str]
    commands: frozenset[str] = frozenset()
    care: str = "none"
    # Replies that lead with what one care level needs (red_flag: emergency first).
    care_replies: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # Replies for a clinic that calls back (handoff): used when {callback_when} is known.
    callback_replies: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Catalog:
    """Everything in intents/: intents, system templates, lexicon, red-flag rules.

    `translations` holds a catalog per other language (intents/es/): the same
    intents with that language's labels, examples and replies, and its system
    templates. The lexicon and sign rules are shared: people mix languages.
    """

    intents: Mapping[str, Intent]
    system: Mapping[str, Mapping[str, str]]
    lexicon: Mapping[str, Any]
    red_flags: Mapping[str, Any]
    directory: Path = field(default=Path("."))
    language: str = BASE_LANGUAGE
    translations: Mapping[str, Catalog] = field(default_factory=dict)
    # Neutral values for a line without a clinic profile, in this catalog's language.
    defaults: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_VARIABLES))

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages this catalog answers in, base language first."""
        return (self.language, *self.translations)

    def localized(self, language: str | None) -> Catalog:
        """Return the catalog whose labels and replies are in `language` (else this one)."""
        return self.translations.get(language or "", self)

    def packs(self) -> tuple[Catalog, ...]:
        """This catalog and every translation: what the models learn from."""
        return (self, *self.translations.values())

    def commands(self) -> dict[str, str]:
        """Map each exact command word, in any language, to its intent id."""
        return {word: i.id for c in self.packs() for i in c.intents.values() for word in i.commands}

    def command_languages(self) -> dict[str, str]:
        """Map each exact command word to the language whose files list it."""
        return {word: c.language for c in reversed(self.packs())
                for i in c.intents.values() for word in i.commands}

    def examples(self) -> list[tuple[str, str, str]]:
        """Return (text, intent id, language) for every example in every language."""
        return [(text, i.id, c.language) for c in self.packs()
                for i in c.intents.values() for text in i.examples]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise IntentDataError(path, "(file)", f"cannot be read as YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise IntentDataError(path, "(file)", "must be a mapping of fields")
    return data


def _string_list(path: Path, data: dict[str, Any], name: str, required: bool) -> tuple[str, ...]:
    value = data.get(name, [] if not required else None)
    if value is None or not isinstance(value, list):
        raise IntentDataError(path, name, "must be a list of strings")
    if not all(isinstance(v, str) and v.strip() for v in value):
        raise IntentDataError(path, name, "every entry must be a non-empty string")
    return tuple(value)


def check_template(
    path: Path, name: str, text: str, channel: str, language: str = BASE_LANGUAGE,
    variables: Mapping[str, str] = LONGEST_VARIABLES,
) -> None:
    """Reject a template with unknown variables, or SMS text that is too long.

    English text is GSM-7 everywhere. Another language's SMS may use UCS-2
    (Spanish a, i, o, u with accents) but must still fit two segments of
    whichever encoding it uses; its voice and API text may use any letter.
    """
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
    except ValueError as exc:
        raise IntentDataError(path, name, f"bad template braces: {exc}") from exc
    unknown = fields - TEMPLATE_VARIABLES
    if unknown:
        raise IntentDataError(path, name, f"unknown variables {sorted(unknown)}")
    rendered = text.format_map({**variables})
    if language != BASE_LANGUAGE:
        segments = segment_count(rendered)
        if channel.startswith("sms") and segments > 2:
            raise IntentDataError(path, name, f"{segments} SMS segments with a long clinic "
                                              f"name ({len(rendered)} characters); max 2")
        return
    bad = non_gsm7_chars(rendered)
    if bad:
        raise IntentDataError(path, name, f"non-GSM-7 characters {bad!r}")
    if channel.startswith("sms") and len(rendered) > MAX_SMS_CHARS:
        raise IntentDataError(
            path, name, f"{len(rendered)} characters with a long clinic name; max {MAX_SMS_CHARS}"
        )


@dataclass(frozen=True)
class _Rules:
    """How one language's templates are checked: its language and longest values."""

    language: str = BASE_LANGUAGE
    variables: Mapping[str, str] = field(default_factory=lambda: dict(LONGEST_VARIABLES))

    def check(self, path: Path, name: str, text: str, channel: str) -> None:
        check_template(path, name, text, channel, self.language, self.variables)


def _load_intent(path: Path, rules: _Rules = _Rules()) -> Intent:
    data = _read_yaml(path)
    intent_id = data.get("id")
    if intent_id != path.stem:
        raise IntentDataError(path, "id", f"must equal the file name {path.stem!r}")
    label = data.get("label")
    if not isinstance(label, str) or not label.strip():
        raise IntentDataError(path, "label", "must be a short phrase")
    examples = _string_list(path, data, "examples", required=True)
    if not examples:
        raise IntentDataError(path, "examples", "needs at least one example")
    replies = data.get("replies")
    if not isinstance(replies, dict):
        raise IntentDataError(path, "replies", "must map channels to templates")
    for key in CHANNELS:
        if not isinstance(replies.get(key), str):
            raise IntentDataError(path, f"replies.{key}", "missing template")
    clean = {k: str(v) for k, v in replies.items() if k in REPLY_KEYS and v is not None}
    for key, text in clean.items():
        rules.check(path, f"replies.{key}", text, key)
    commands = frozenset(c.lower() for c in _string_list(path, data, "commands", required=False))
    care = data.get("care", "none")
    if care not in CARE_LEVELS:
        raise IntentDataError(path, "care", f"must be one of {list(CARE_LEVELS)}")
    return Intent(
        id=intent_id,
        label=label.strip(),
        keywords=_string_list(path, data, "keywords", required=False),
        examples=examples,
        replies=clean,
        commands=commands,
        care=care,
        care_replies=_care_replies(path, data, rules),
        callback_replies=_callback_replies(path, data, rules),
    )


def _templates(path: Path, name: str, replies: dict[str, Any], rules: _Rules,
               allowed: tuple[str, ...]) -> dict[str, str]:
    """Check one set of channel templates: sms, voice and api at least, no other keys."""
    for key in CHANNELS:
        if not isinstance(replies.get(key), str):
            raise IntentDataError(path, f"{name}.{key}", "missing template")
    for key, text in replies.items():
        if key not in allowed:
            raise IntentDataError(path, f"{name}.{key}", f"must be one of {list(allowed)}")
        rules.check(path, f"{name}.{key}", str(text), key)
    return {str(k): str(v) for k, v in replies.items()}


def _callback_replies(path: Path, data: dict[str, Any], rules: _Rules) -> dict[str, str]:
    """Read `callback_replies`: the channel templates for a clinic that will call back."""
    replies = data.get("callback_replies")
    if replies is None:
        return {}
    if not isinstance(replies, dict):
        raise IntentDataError(path, "callback_replies", "must map channels to templates")
    return _templates(path, "callback_replies", replies, rules, CHANNELS)


def _care_replies(path: Path, data: dict[str, Any], rules: _Rules) -> dict[str, dict[str, str]]:
    """Read `replies_by_care`: per care level, a full set of channel templates."""
    by_care = data.get("replies_by_care") or {}
    if not isinstance(by_care, dict):
        raise IntentDataError(path, "replies_by_care", "must map care levels to templates")
    loaded = {}
    for care, replies in by_care.items():
        name = f"replies_by_care.{care}"
        if care not in CARE_LEVELS or not isinstance(replies, dict):
            raise IntentDataError(path, name, f"must be one of {list(CARE_LEVELS)} with templates")
        loaded[str(care)] = _templates(path, name, replies, rules, REPLY_KEYS)
    return loaded


def _load_defaults(path: Path) -> dict[str, str]:
    """Read `defaults:` in _system.yaml: the neutral clinic values in that language."""
    data = _read_yaml(path).get("defaults") or {}
    if not isinstance(data, dict) or not set(data) <= set(DEFAULT_VARIABLES):
        raise IntentDataError(path, "defaults", f"may set only {sorted(DEFAULT_VARIABLES)}")
    return {**DEFAULT_VARIABLES, **{str(k): str(v) for k, v in data.items()}}


def _load_system(path: Path, rules: _Rules = _Rules()) -> dict[str, dict[str, str]]:
    data = _read_yaml(path).get("templates")
    if not isinstance(data, dict):
        raise IntentDataError(path, "templates", "must map template names to channels")
    system: dict[str, dict[str, str]] = {}
    for name, channels in data.items():
        complete = isinstance(channels, dict) and all(
            isinstance(channels.get(c), str) for c in CHANNELS
        )
        if not complete:
            raise IntentDataError(path, f"templates.{name}", "needs sms, voice and api text")
        for channel, text in channels.items():
            rules.check(path, f"templates.{name}.{channel}", str(text), str(channel))
        short = str(channels["sms"]).format_map({**rules.variables})
        if name in ONE_SEGMENT and segment_count(short) > 1:
            raise IntentDataError(path, f"templates.{name}.sms",
                                  f"{len(short)} characters; max one segment "
                                  f"({SINGLE_SEGMENT} GSM-7 or 70 UCS-2)")
        system[str(name)] = {str(k): str(v) for k, v in channels.items()}
    return system


def _load_translation(folder: Path, base: Catalog) -> Catalog:
    """Read intents/<language>/: every base intent and system template, in that language.

    Care levels and sign rules stay the base's: a translation changes words, not triage.
    """
    labels = [_read_yaml(folder / f"{i}.yaml").get("label") for i in base.intents]
    longest = max((str(label) for label in labels if label), key=len, default="")
    rules = _Rules(folder.name, {**LONGEST_VARIABLES, "option1": longest, "option2": longest})
    intents = {}
    for intent_id, english in base.intents.items():
        path = folder / f"{intent_id}.yaml"
        if not path.is_file():
            raise IntentDataError(path, "(file)", f"missing ({folder.name} needs every intent)")
        intent = _load_intent(path, rules)
        for care in english.care_replies:
            if care not in intent.care_replies:
                raise IntentDataError(path, f"replies_by_care.{care}", "missing template")
        if "sms_more" in english.replies and "sms_more" not in intent.replies:
            raise IntentDataError(path, "replies.sms_more", "missing template")
        if english.callback_replies and not intent.callback_replies:
            raise IntentDataError(path, "callback_replies", "missing templates")
        intents[intent_id] = replace(intent, care=english.care)
    system = _load_system(folder / "_system.yaml", rules)
    missing = [name for name in base.system if name not in system]
    if missing:
        raise IntentDataError(folder / "_system.yaml", "templates", f"missing {missing}")
    return replace(base, intents=intents, system=system, language=folder.name,
                   defaults=_load_defaults(folder / "_system.yaml"))


def _check_patterns(path: Path, rules: dict[str, Any]) -> None:
    for sign in rules.get("signs", []):
        for pattern in sign.get("patterns", []):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise IntentDataError(path, f"signs.{sign.get('name')}", str(exc)) from exc


def load_catalog(directory: Path | str) -> Catalog:
    """Read every file in the intents folder and fail loudly on the first bad one."""
    folder = Path(directory)
    if not folder.is_dir():
        raise IntentDataError(folder, "(folder)", "intents folder not found")
    intents = {p.stem: _load_intent(p) for p in sorted(folder.glob("[!_]*.yaml"))}
    missing = [i for i in CONTRACT_INTENTS if i not in intents]
    if missing:
        raise IntentDataError(folder, "(folder)", f"missing intent files for {missing}")
    # Each language's words for signs and shorthand join the shared rules: people mix.
    extra = [folder / language for language in LANGUAGES[1:]]
    red_flags = merged_file(folder / "_red_flags.yaml", extra, _read_yaml)
    lexicon = merged_file(folder / "_lexicon.yaml", extra, _read_yaml)
    _check_patterns(folder / "_red_flags.yaml", red_flags)
    base = Catalog(
        intents=intents,
        system=_load_system(folder / "_system.yaml"),
        defaults=_load_defaults(folder / "_system.yaml"),
        lexicon=lexicon,
        red_flags=red_flags,
        directory=folder,
    )
    translations = {
        language: _load_translation(folder / language, base)
        for language in LANGUAGES if language != BASE_LANGUAGE and (folder / language).is_dir()
    }
    return replace(base, translations=translations)
