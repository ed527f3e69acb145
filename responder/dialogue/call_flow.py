"""One phone call, turn by turn: what the line says next and whether it listens again.

No Flask here: the web route (responder/channels/voice.py) renders each `Step` as TwiML and
`calfline chat --voice` prints it. All the state a call needs travels in the
Gather action URL (`CallState`), so any worker can answer any turn, and the turn
limit means no call path can loop forever. A step depends only on the state and
what the caller gave, so a re-sent webhook for the same turn gets the same TwiML.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from responder.dialogue.language import fold, follow_language, offered_languages
from responder.dialogue.replies import Reply, answer_to_check, render_intent, render_system
from responder.dialogue.respond import Responder
from responder.errors import ConfigError
from responder.nlu.catalog import Catalog
from responder.nlu.matcher import Match

# Keypad menu (the `voice_menu` template reads it out). 0 repeats the menu itself, not
# the last answer: the call keeps no memory of what it said, only the turn count.
MENU_DIGITS: Mapping[str, str] = {
    "1": "cramp_now",
    "2": "post_run_tightness",
    "3": "shoe_question",
    "4": "chronic_pain",
}
REPEAT_DIGIT = "0"
CONNECT_DIGIT = "1"
# "Para español, oprima 9" / "For English, press 9", when the number offers both.
LANGUAGE_DIGIT = "9"
# The check question's answers: a whole reply, or key 1 (yes) / 2 (no).
CHECK_KEYS = {"1": True, "2": False}
_CHECK_YES = re.compile(r"^(?:yes|yeah|yep|yup|yes it is|i do|yes i do|i think so"
                        r"|si|si es|si tengo|claro|claro que si|creo que si)$")
_CHECK_NO = re.compile(r"^(?:no|nope|nah|no it is not|no it isn t|i don t|none|none of those"
                       r"|no es|no tengo|ninguno|ninguna|nada|para nada)$")
# What a check may stand before: the calf and social intents, never a command.
CHECKABLE = frozenset({"cramp_now", "post_run_tightness", "shoe_question", "chronic_pain",
                       "prevention", "hydration", "medication", "greeting", "help", "thanks",
                       "out_of_scope", "handoff"})
# Intents after which the call ends: the caller said goodbye or asked to stop.
ENDING_INTENTS = frozenset({"thanks", "opt_out"})
# One re-prompt, then the keypad menu, then goodbye.
MAX_UNHEARD = 2
# Twilio's hints limits: 500 phrases of at most 100 characters (warning 13330).
MAX_HINTS = 500
MAX_HINT_CHARS = 100
# A number we may <Dial>: full E.164 (ITU-T E.164), so never a short emergency
# code such as 911, 112 or 999. The line tells callers to dial those themselves.
_DIALABLE = re.compile(r"^\+[1-9]\d{7,14}$")
_CONNECT_WORDS = re.compile(r"\bconnect(?:ed|ing|ion)?\b|\b(?:conectar|comunicar)\w*"
                            r"|^(?:yes|yeah|yes please|si|si por favor)$")
# A whole answer that turns the connect offer down; the call goes on ("Anything else?").
_DECLINE_WORDS = re.compile(
    r"^(?:no|nope|nah|no thanks?|no thank you|not now|(?:no )?i m (?:ok|okay|fine)"
    r"|no gracias|ahora no|estoy bien)$"
)


@dataclass(frozen=True)
class CallRules:
    """The limits every call obeys, from configuration."""

    max_turns: int = 6
    min_confidence: float = 0.2
    escalation_phone: str = ""
    # The clinic's own phone while it is open: a caller who asks for a person is offered it.
    handoff_phone: str = ""


@dataclass(frozen=True)
class CallState:
    """Where a call is; carried in the Gather action URL's query string."""

    turn: int = 1
    tries: int = 0
    offer: bool = False
    check: str = ""  # asked the check question; the intent to answer on "no"
    handoff: bool = False  # the offer is to the clinic's front desk, not the alert phone
    lang: str = ""  # the call's language (the Gather listens in it); "" is the number's default

    def query(self) -> dict[str, int | str]:
        """Return the query-string fields for the next action URL."""
        fields: dict[str, int | str] = {"turn": self.turn, "tries": self.tries}
        if self.lang:
            fields["lang"] = self.lang
        if self.offer:
            fields["offer"] = 1
        if self.handoff:
            fields["handoff"] = 1
        if self.check:
            fields["check"] = self.check
        return fields

    @classmethod
    def from_query(cls, args: Mapping[str, str], rules: CallRules) -> CallState:
        """Read the state back; anything odd is clamped into range, never an error."""
        # One turn past the limit exists only to answer a last-turn connect offer.
        turn = min(max(_to_int(args.get("turn"), 1), 1), rules.max_turns + 1)
        tries = min(max(_to_int(args.get("tries"), 0), 0), MAX_UNHEARD)
        check = args.get("check") or ""
        lang = args.get("lang") or ""
        return cls(turn, tries, args.get("offer") == "1", check if check in CHECKABLE else "",
                   args.get("handoff") == "1", lang if re.fullmatch(r"[a-z]{2}", lang) else "")


@dataclass(frozen=True)
class Heard:
    """What the caller gave on one turn: a transcript, its confidence, or keys."""

    speech: str = ""
    confidence: float | None = None
    digits: str = ""

    @classmethod
    def from_fields(
        cls, speech: str | None, confidence: str | None, digits: str | None
    ) -> Heard:
        """Parse Twilio's SpeechResult, Confidence and Digits; Confidence may be absent."""
        return cls((speech or "").strip(), _to_confidence(confidence), (digits or "").strip())

    @property
    def key(self) -> str:
        """The first key pressed, ignoring Twilio's finish keys."""
        return self.digits.strip("#*")[:1]


@dataclass(frozen=True)
class Speak:
    """Say this, all of it, before anything else happens."""

    text: str
    slow: bool = False
    # "" is the line's base language. Left out of ==: the text already differs.
    language: str = field(default="", compare=False)


@dataclass(frozen=True)
class Listen:
    """Gather speech or a key (saying `prompt` while listening), then come back with `state`."""

    prompt: str | None
    state: CallState
    # What the Gather listens for and its prompt is spoken in; the state says it too.
    language: str = field(default="", compare=False)


@dataclass(frozen=True)
class Connect:
    """Put the caller through to this number."""

    number: str


@dataclass(frozen=True)
class HangUp:
    """End the call."""


Action = Speak | Listen | Connect | HangUp


@dataclass(frozen=True)
class Step:
    """Everything the line does in answer to one turn, in order."""

    actions: tuple[Action, ...]
    match: Match | None = field(default=None, compare=False)
    template_id: str = field(default="", compare=False)

    @property
    def intent(self) -> str | None:
        """The matched intent, if the caller's words (or a menu key) were matched."""
        return self.match.intent if self.match else None

    @property
    def spoken(self) -> str:
        """Everything the caller hears on this step, as the conversation store records it."""
        texts = [a.text if isinstance(a, Speak) else a.prompt or ""
                 for a in self.actions if isinstance(a, Speak | Listen)]
        return " ".join(t for t in texts if t)


class CallFlow:
    """Decide each turn of a call from the caller's input and the call's state."""

    def __init__(
        self, responder: Responder, rules: CallRules, variables: Mapping[str, str]
    ) -> None:
        self.responder = responder
        self.catalog: Catalog = responder.catalog
        self.rules = rules
        self.variables = dict(variables)
        self.offered = offered_languages(variables, self.catalog.languages)

    def say(self, name: str, lang: str) -> Speak:
        """Render one of the `voice_*` prompts in intents/_system.yaml in `lang`."""
        local = self.catalog.localized(lang)
        return Speak(render_system(local, name, "voice", self.variables).text, language=lang)

    def start(self) -> Step:
        """Greet the caller (not a substitute for medical care), offer the other
        language when the number has two, then listen."""
        lang = self.offered[0]
        return Step((*self._greeting(lang), Listen(None, CallState(), lang)),
                    template_id=_system_id("voice_greeting"))

    def _greeting(self, lang: str) -> tuple[Speak, ...]:
        others = [o for o in self.offered if o != lang][:1]
        return (self.say("voice_greeting", lang),
                *(self.say("voice_language_offer", o) for o in others))

    def answer(self, state: CallState, heard: Heard) -> Step:
        """Answer one turn: connect, menu, language, matched reply, or the no-input path."""
        languages = self.catalog.languages
        state = replace(state, lang=state.lang if state.lang in languages else self.offered[0])
        if heard.key == LANGUAGE_DIGIT and len(self.offered) > 1:
            lang = next(o for o in self.offered if o != state.lang)
            step = self._listen(replace(state, lang=lang), self._greeting(lang), None, tries=0)
            return replace(step, template_id=_system_id("voice_greeting"))
        phone = self.rules.handoff_phone if state.handoff else self.rules.escalation_phone
        lang, local = state.lang, self.catalog.localized(state.lang)
        if state.offer and phone and _wants_connection(heard):
            ended = "voice_handoff_ended" if state.handoff else "voice_connect_ended"
            return Step((
                self.say("voice_connecting", lang),
                Connect(phone),
                self.say(ended, lang),
                HangUp(),
            ), template_id=_system_id("voice_connecting"))
        if state.offer and phone and _declines(heard):
            return self._prompt(state, "voice_anything_else", tries=0)
        answered = _check_answer(heard) if state.check else None
        if answered is not None:
            return self._answer_check(state, heard, answered)
        key = heard.key
        if key == REPEAT_DIGIT:
            return self._prompt(state, "voice_menu", tries=0)
        if key in MENU_DIGITS:
            intent = MENU_DIGITS[key]
            match = Match(heard.digits, key, intent, 1.0, reason="keypad", language=lang)
            reply = render_intent(local, intent, "voice", self.variables)
            return self._reply(state, reply, match)
        if heard.speech:
            match = self.responder.match(heard.speech)
            state = replace(state, lang=follow_language(match, lang, lang, languages))
            reply = self.responder.reply(match, "voice", self.variables, state.lang)
            unsure = heard.confidence is not None and heard.confidence < self.rules.min_confidence
            # A red flag (or its check question) is answered even when the recognizer is
            # unsure: when in doubt, warn.
            if not unsure or reply.urgent or match.check:
                return self._reply(state, reply, match)
        return self._unheard(state)

    def _answer_check(self, state: CallState, heard: Heard, yes: bool) -> Step:
        """YES to the check question is a red flag (alert too); NO answers what they asked."""
        match, reply = answer_to_check(self.catalog.localized(state.lang),
                                       heard.digits or heard.speech, state.check,
                                       yes, "voice", self.variables)
        return self._reply(replace(state, check=""), reply, replace(match, language=state.lang))

    def _reply(self, state: CallState, reply: Reply, match: Match | None = None) -> Step:
        intent = reply.template_id.split(".")[0]
        said = (Speak(reply.text, slow=reply.urgent, language=state.lang),) if reply.text else ()
        if intent in ENDING_INTENTS:
            closing = () if said else (self.say("voice_goodbye", state.lang),)
            return Step(said + closing + (HangUp(),), match, reply.template_id)
        offer = reply.urgent and bool(self.rules.escalation_phone)
        check = match.intent if match and match.check else ""
        # Asked for a person while the clinic is open: offer to put the call through.
        handoff = (not offer and not check and match is not None and match.intent == "handoff"
                   and bool(self.rules.handoff_phone))
        if offer or handoff:
            prompt: str | None = self.say("voice_connect_offer", state.lang).text
        elif check or reply.template_id.startswith("system.clarify"):
            prompt = None  # the question is the prompt
        else:
            prompt = self.say("voice_anything_else", state.lang).text
        # A red flag (or a check question) on the last turn still gets its answer turn, once.
        step = self._listen(state, said, prompt, tries=0, offer=offer or handoff,
                            extra_turn=offer or bool(check), check=check, handoff=handoff)
        return replace(step, match=match, template_id=reply.template_id)

    def _unheard(self, state: CallState) -> Step:
        tries = state.tries + 1
        if tries > MAX_UNHEARD:
            return self._goodbye((), state.lang)
        if tries == 1:
            name = "voice_connect_offer" if state.offer else "voice_reprompt"
        else:
            name = "voice_menu"
        return self._prompt(state, name, tries=tries, offer=state.offer, handoff=state.handoff)

    def _prompt(self, state: CallState, name: str, tries: int, offer: bool = False,
                handoff: bool = False) -> Step:
        """Only ask (a `voice_*` prompt) and listen; at the turn limit, only say goodbye."""
        step = self._listen(state, (), self.say(name, state.lang).text, tries=tries,
                            offer=offer, handoff=handoff)
        return step if step.template_id else replace(step, template_id=_system_id(name))

    def _listen(
        self,
        state: CallState,
        said: tuple[Action, ...],
        prompt: str | None,
        tries: int,
        offer: bool = False,
        extra_turn: bool = False,
        check: str = "",
        handoff: bool = False,
    ) -> Step:
        # Turn max_turns + 1 (reached only through extra_turn) always ends the call.
        last = self.rules.max_turns + (1 if extra_turn else 0)
        if state.turn >= last:
            return self._goodbye(said, state.lang)
        phone = self.rules.handoff_phone if handoff else self.rules.escalation_phone
        offer = offer and bool(phone)
        handoff = handoff and offer
        # The number's default language travels as "" (no field in the action URL).
        lang = "" if state.lang == self.offered[0] else state.lang
        after = CallState(state.turn + 1, tries, offer, check, handoff, lang)
        return Step(said + (Listen(prompt, after, state.lang),))

    def _goodbye(self, said: tuple[Action, ...], lang: str) -> Step:
        """Say goodbye and hang up; a step that only says goodbye is named for it."""
        template_id = "" if said else _system_id("voice_goodbye")
        return Step(said + (self.say("voice_goodbye", lang), HangUp()), template_id=template_id)


HINTLESS_INTENTS = frozenset({"out_of_scope"})


def speech_hints(catalog: Catalog) -> str:
    """The intents' keywords as a Gather `hints` list, within Twilio's limits.

    Hints bias the recognizer towards their words, so out_of_scope's ("pizza",
    "weather") would only pull callers' calf words away from the calf.
    """
    seen: dict[str, str] = {}
    for intent in catalog.intents.values():
        if intent.id in HINTLESS_INTENTS:
            continue
        for keyword in intent.keywords:
            # Commas separate hints, so a keyword cannot contain one.
            phrase = " ".join(keyword.replace(",", " ").split())
            if phrase and len(phrase) <= MAX_HINT_CHARS:
                seen.setdefault(phrase.lower(), phrase)
    return ", ".join(list(seen.values())[:MAX_HINTS])


def dialable(number: str, emergency_number: str) -> bool:
    """Return True for a full E.164 number that is not the emergency number."""
    digits = re.sub(r"\D", "", emergency_number)
    return bool(_DIALABLE.match(number)) and number.lstrip("+") != digits


def call_rules(config: Mapping[str, Any]) -> CallRules:
    """Check the voice settings once at start-up; a bad value names its variable."""
    max_turns = int(config["VOICE_MAX_TURNS"])
    if not 1 <= max_turns <= 50:
        raise ConfigError(f"CALFLINE_VOICE_MAX_TURNS={max_turns}: must be 1 to 50")
    min_confidence = float(config["VOICE_MIN_CONFIDENCE"])
    if not 0.0 <= min_confidence <= 1.0:
        raise ConfigError(f"CALFLINE_VOICE_MIN_CONFIDENCE={min_confidence}: must be 0 to 1")
    phone = re.sub(r"[\s().-]", "", str(config.get("ESCALATION_PHONE") or ""))
    if phone and not dialable(phone, str(config["EMERGENCY_NUMBER"])):
        raise ConfigError(
            f"CALFLINE_ESCALATION_PHONE={phone!r}: must be a clinic's full number like "
            "+15551234567; the line never dials emergency services"
        )
    return CallRules(max_turns, min_confidence, phone)


def _words(speech: str) -> str:
    return " ".join(re.sub(r"[^a-z ]", " ", fold(speech.lower())).split())


def _wants_connection(heard: Heard) -> bool:
    if heard.key:
        return heard.key == CONNECT_DIGIT
    return bool(_CONNECT_WORDS.search(_words(heard.speech)))


def _check_answer(heard: Heard) -> bool | None:
    """Return True for yes (or key 1), False for no (or key 2), None for anything else."""
    if heard.key:
        return CHECK_KEYS.get(heard.key)
    words = _words(heard.speech)
    if _CHECK_YES.match(words):
        return True
    return False if _CHECK_NO.match(words) else None


def _declines(heard: Heard) -> bool:
    return not heard.key and bool(_DECLINE_WORDS.match(_words(heard.speech)))


def _system_id(name: str) -> str:
    """The template id render_system gives a voice prompt."""
    return f"system.{name}.voice"


def _to_int(value: str | None, default: int) -> int:
    try:
        return int(value or "")
    except ValueError:
        return default


def _to_confidence(value: str | None) -> float | None:
    """Twilio does not promise Confidence: absent or unreadable means unknown."""
    try:
        confidence = float(value or "")
    except ValueError:
        return None
    return confidence if math.isfinite(confidence) else None
