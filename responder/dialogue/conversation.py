"""Short-term conversation context: opt-out, the check question, "1"/"2", "more", "yes".

No Flask here.

The store keeps a ConversationState per (sender, our number); respond() reads
it with the new message and returns the reply and the state to save. Opt-out
follows the carrier rules (Twilio "opt-out keywords", error 21610): after an
opt_out command nothing is sent to the sender until an opt_in command.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from responder.dialogue.language import (
    follow_language,
    offered_languages,
    plain,
    switch_request,
)
from responder.dialogue.replies import Reply, answer_to_check, render_intent, render_system
from responder.dialogue.respond import Responder
from responder.nlu.matcher import Match

# Context answers: a whole message, any case, edge punctuation and accents ignored.
CHOICES = {"1": 0, "one": 0, "uno": 0, "2": 1, "two": 1, "dos": 1}
MORE = frozenset({"more", "mas"})
YES = frozenset({"yes", "si"})
CLARIFY_PREFIX = "system.clarify"
CHECK_PREFIX = "system.check"
# Answers to the check question (a whole message), English and Spanish. Anything
# else is a new message.
CHECK_YES = frozenset({"yes", "y", "yeah", "yep", "yup", "ya", "yes it is", "i do", "1",
                       "si", "s", "si es", "si tengo", "claro", "claro que si", "correcto"})
CHECK_NO = frozenset({"no", "n", "nope", "nah", "no it is not", "no it isnt", "i do not",
                      "i dont", "none", "none of those", "2",
                      "no es", "no tengo", "ninguno", "ninguna", "nada", "para nada"})
# Replies to YES / NO when the store is down and a check question may be pending.
UNKNOWN_YES, UNKNOWN_NO = "check_answer_unknown_yes", "check_answer_unknown_no"
LANGUAGE_SET = "language_set"  # intents/_system.yaml: the reply to ESPAÑOL / ENGLISH
# Template id of the (unsent, empty) reply to a sender who opted out.
SILENT_TEMPLATE = "none.opted_out"
# Template id of the (unsent, empty) reply while a staff member has the conversation.
HELD_TEMPLATE = "none.taken_over"



@dataclass(frozen=True)
class ConversationState:
    """What the line remembers about one sender on one of our numbers."""

    opted_out: bool = False
    last_intent: str | None = None
    clarify: tuple[str, str] | None = None
    context_at: datetime | None = None
    check: str | None = None  # asked the check question; the answer if they say NO
    language: str | None = None  # kept past the context window, and across opt-out
    # Taken over by staff: their last action (take-over or reply); None when not held.
    held_since: datetime | None = None
    # The store could not be read (an outage): a check question may be waiting.
    unknown: bool = False

    def without_context(self) -> ConversationState:
        """Forget the last intent and pending question; keep the opt-out and language."""
        return ConversationState(opted_out=self.opted_out, language=self.language,
                                 unknown=self.unknown)

    def fresh(self, now: datetime, window: timedelta) -> ConversationState:
        """Drop context older than `window` (CALFLINE_CONTEXT_MINUTES)."""
        if self.context_at is None or now - self.context_at > window:
            return self.without_context()
        return self


@dataclass(frozen=True)
class Turn:
    """The reply to one message and the state to save; opt_change is None, True or False."""

    match: Match
    reply: Reply
    state: ConversationState
    opt_change: bool | None = None


def respond(
    responder: Responder,
    text: str,
    channel: str,
    variables: Mapping[str, str] | None,
    state: ConversationState,
    now: datetime,
    window: timedelta,
    hold: timedelta | None = None,
    default_language: str | None = None,
    match: Match | None = None,
) -> Turn:
    """Answer one message in the light of the conversation so far.

    `match` is responder.match(text) when the caller has it already: the store reads
    the state inside its write transaction, so the matching is done before it.

    While staff have taken the conversation over (state.held_since, less than `hold`
    ago) the line sends nothing, except what safety needs: the urgent reply to a red
    flag and the check question about a possible one (and its answer). Opt-out and
    opt-in are still recorded; Twilio itself confirms STOP.
    """
    turn = _respond(responder, text, channel, variables, state, now, window, default_language,
                    match)
    held = state.held_since is not None and hold is not None and now - state.held_since < hold
    if not held:
        return turn
    safety = turn.reply.urgent or turn.match.check or turn.state.check is not None
    if not safety and turn.opt_change is None:
        turn = Turn(turn.match, Reply("", HELD_TEMPLATE), state)
    return replace(turn, state=replace(turn.state, held_since=state.held_since))


def _respond(
    responder: Responder,
    text: str,
    channel: str,
    variables: Mapping[str, str] | None,
    state: ConversationState,
    now: datetime,
    window: timedelta,
    default_language: str | None,
    match: Match | None,
) -> Turn:
    """Answer one message in its conversation's context and language."""
    catalog = responder.catalog
    match, word = match or responder.match(text), plain(text)
    state = state.fresh(now, window)
    wanted = switch_request(text, catalog.languages)
    default = default_language or offered_languages(variables, catalog.languages)[0]
    # A conversation with context but no language began before replies had one: English.
    current = state.language or (catalog.language if state.context_at else None)
    language = wanted or follow_language(match, current, default, catalog.languages)
    local = catalog.localized(language)
    new = ConversationState(language=language, context_at=now)
    if state.opted_out:
        if match.intent == "opt_in":
            reply = responder.reply(match, channel, variables, language)
            return Turn(match, reply, replace(new, context_at=None), opt_change=False)
        return Turn(match, Reply("", SILENT_TEMPLATE, language=language), state)
    if match.intent == "opt_out":
        reply = responder.reply(match, channel, variables, language)
        return Turn(match, reply, ConversationState(opted_out=True, language=language),
                    opt_change=True)
    if wanted:
        said = replace(match, intent="help", confidence=1.0, reason="language", care="none",
                       ambiguous=False, language=wanted, language_confidence=1.0)
        return Turn(said, render_system(local, LANGUAGE_SET, channel, variables),
                    replace(state, language=wanted, context_at=now))
    if state.check and (word in CHECK_YES or word in CHECK_NO):
        return answer_check(responder, text, channel, variables, state.check, new)
    if state.unknown and not word.isdigit() and (word in CHECK_YES or word in CHECK_NO):
        # YES may answer a check question the database holds: say what YES would mean.
        template = UNKNOWN_YES if word in CHECK_YES else UNKNOWN_NO
        return Turn(match, render_system(local, template, channel, variables), new)
    reply = responder.reply(match, channel, variables, language)
    if match.intent == "opt_in" and word in YES:
        # Not opted out, so YES answers us: after a red-flag reply keep the urgent advice.
        chosen = "red_flag" if state.last_intent == "red_flag" else "help"
        reply = render_intent(local, chosen, channel, variables)
    elif match.intent != "red_flag" and word in CHOICES and state.clarify:
        chosen = state.clarify[CHOICES[word]]
        reply = render_intent(local, chosen, channel, variables)
    elif match.intent != "red_flag" and word in MORE:
        if not state.last_intent:
            return Turn(match, render_system(local, "more_unavailable", channel, variables),
                        replace(state, language=language, context_at=now))
        chosen = state.last_intent
        reply = render_intent(local, chosen, channel, variables, more=True)
    elif match.check:
        return Turn(match, reply, replace(new, check=match.intent))
    elif reply.template_id.startswith(CLARIFY_PREFIX) and match.runner_up:
        return Turn(match, reply, replace(new, clarify=(match.intent, match.runner_up)))
    else:
        chosen = match.intent
    return Turn(match, reply, replace(new, last_intent=chosen))


def answer_check(
    responder: Responder,
    text: str,
    channel: str,
    variables: Mapping[str, str] | None,
    pending: str,
    new: ConversationState,
) -> Turn:
    """Answer YES or NO to the check question: the urgent reply, or what they asked."""
    yes = plain(text) in CHECK_YES
    local = responder.catalog.localized(new.language)
    match, reply = answer_to_check(local, text, pending, yes, channel, variables)
    match = replace(match, language=new.language)
    return Turn(match, reply, replace(new, last_intent=match.intent))
