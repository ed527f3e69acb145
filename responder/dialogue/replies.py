"""Pick and fill the reviewed template that answers a match on a channel.

Nothing is generated free-form: every reply is a template from intents/
with only the clinic's name, phone and emergency number filled in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from responder.nlu.catalog import BASE_LANGUAGE, DEFAULT_VARIABLES, Catalog
from responder.nlu.matcher import Match

URGENT_INTENTS = frozenset({"red_flag"})
CHECK_TEMPLATE = "check"  # intents/_system.yaml: the yes/no question about warning signs


@dataclass(frozen=True)
class Reply:
    """The text to send and which template it came from."""

    text: str
    template_id: str
    urgent: bool = False
    language: str = BASE_LANGUAGE  # the template's language; ids are the same in each


def template_variables(
    overrides: Mapping[str, str] | None = None, defaults: Mapping[str, str] = DEFAULT_VARIABLES,
) -> dict[str, str]:
    """Return the neutral defaults (in the reply's language) with a clinic's values on top."""
    values = dict(defaults)
    values.update({k: v for k, v in (overrides or {}).items() if v})
    return values


def _filled(
    catalog: Catalog, channel: str, variables: Mapping[str, str] | None
) -> dict[str, str]:
    """The template values for one reply, in the catalog's language.

    A Spanish voice reads "911" as a number ("novecientos once"); said digit by
    digit it is "nueve uno uno", which is how the number is dialled.
    """
    values = template_variables(variables, catalog.defaults)
    # When the clinic calls back, said in this language (frontdesk/hours.py).
    local_when = values.get(f"callback_when_{catalog.language}")
    if local_when:
        values["callback_when"] = local_when
    number = values.get("emergency_number", "")
    if channel == "voice" and catalog.language != BASE_LANGUAGE and number.isdigit():
        values["emergency_number"] = " ".join(number)
    return values


def render_system(
    catalog: Catalog, name: str, channel: str, variables: Mapping[str, str] | None = None
) -> Reply:
    """Fill one of the non-intent templates in intents/_system.yaml."""
    text = catalog.system[name][channel].format_map(_filled(catalog, channel, variables))
    return Reply(text, f"system.{name}.{channel}", language=catalog.language)


def render_intent(
    catalog: Catalog,
    intent_id: str,
    channel: str,
    variables: Mapping[str, str] | None = None,
    more: bool = False,
    care: str | None = None,
) -> Reply:
    """Fill an intent's template for a channel; `more` picks the longer SMS follow-up.

    An intent may lead differently per care level (red_flag: emergency first,
    or same-day care first); without such templates the intent's own apply.
    With a clinic's {callback_when}, handoff says when the clinic will call back.
    """
    intent = catalog.intents[intent_id]
    replies = intent.care_replies.get(care or "", intent.replies)
    prefix = f"{intent_id}.{care}" if replies is not intent.replies else intent_id
    if intent.callback_replies and (variables or {}).get("callback_when") and not more:
        # A clinic that calls back (handoff): say when; the front desk queues the callback.
        replies, prefix = intent.callback_replies, f"{intent_id}.callback"
    key = "sms_more" if more and channel == "sms" and "sms_more" in replies else channel
    text = replies[key].format_map(_filled(catalog, channel, variables))
    return Reply(text, f"{prefix}.{key}", urgent=intent_id in URGENT_INTENTS,
                 language=catalog.language)


def render_reply(
    catalog: Catalog,
    match: Match,
    channel: str,
    variables: Mapping[str, str] | None = None,
) -> Reply:
    """Return the reply for a match; a possible sign asks the check question first,
    and a close call between two calf intents asks which one was meant."""
    if match.check:
        return render_system(catalog, CHECK_TEMPLATE, channel, variables)
    if match.ambiguous and match.runner_up:
        labels = {
            "option1": catalog.intents[match.intent].label,
            "option2": catalog.intents[match.runner_up].label,
        }
        return render_system(catalog, "clarify", channel, {**(variables or {}), **labels})
    return render_intent(catalog, match.intent, channel, variables, care=match.care)


@dataclass(frozen=True)
class CheckReplies:
    """For staff who ask the check question themselves: what to say either way."""

    question: str
    if_yes: str
    if_no: str


def check_replies(
    catalog: Catalog, match: Match, channel: str, variables: Mapping[str, str] | None = None
) -> CheckReplies:
    """Return the check question, the urgent reply for YES and the answer for NO."""
    return CheckReplies(
        question=render_system(catalog, CHECK_TEMPLATE, channel, variables).text,
        if_yes=render_intent(catalog, "red_flag", channel, variables, care="urgent").text,
        if_no=render_intent(catalog, match.intent, channel, variables).text,
    )


def answer_to_check(
    catalog: Catalog,
    said: str,
    pending: str,
    yes: bool,
    channel: str,
    variables: Mapping[str, str] | None = None,
) -> tuple[Match, Reply]:
    """Answer YES or NO to the check question, on any channel.

    YES confirms a warning sign: a red flag like any other (same-day care first,
    and the clinic alert). NO gets the answer to what was asked, `pending`.
    """
    if yes:
        match = Match(said, said, "red_flag", 1.0, reason="check_yes", care="urgent")
        return match, render_intent(catalog, "red_flag", channel, variables, care="urgent")
    care = catalog.intents[pending].care
    match = Match(said, said, pending, 1.0, reason="check_no", care=care)
    return match, render_intent(catalog, pending, channel, variables)
