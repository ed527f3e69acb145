"""Pick and fill the reviewed template that answers a match on a channel.

Nothing is generated free-form: every reply is a template from intents/
with only the clinic's name, phone and emergency number filled in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from responder.nlu.catalog import DEFAULT_VARIABLES, Catalog
from responder.nlu.matcher import Match

URGENT_INTENTS = frozenset({"red_flag"})


@dataclass(frozen=True)
class Reply:
    """The text to send and which template it came from."""

    text: str
    template_id: str
    urgent: bool = False


def template_variables(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the neutral defaults with a clinic's non-empty values on top."""
    values = dict(DEFAULT_VARIABLES)
    values.update({k: v for k, v in (overrides or {}).items() if v})
    return values


def render_system(
    catalog: Catalog, name: str, channel: str, variables: Mapping[str, str] | None = None
) -> Reply:
    """Fill one of the non-intent templates in intents/_system.yaml."""
    text = catalog.system[name][channel]
    return Reply(text.format_map(template_variables(variables)), f"system.{name}.{channel}")


def render_intent(
    catalog: Catalog,
    intent_id: str,
    channel: str,
    variables: Mapping[str, str] | None = None,
    more: bool = False,
) -> Reply:
    """Fill an intent's template for a channel; `more` picks the longer SMS follow-up."""
    replies = catalog.intents[intent_id].replies
    key = "sms_more" if more and channel == "sms" and "sms_more" in replies else channel
    text = replies[key].format_map(template_variables(variables))
    return Reply(text, f"{intent_id}.{key}", urgent=intent_id in URGENT_INTENTS)


def render_reply(
    catalog: Catalog,
    match: Match,
    channel: str,
    variables: Mapping[str, str] | None = None,
) -> Reply:
    """Return the reply for a match; a close call asks a clarifying question."""
    if match.ambiguous and match.runner_up:
        labels = {
            "option1": catalog.intents[match.intent].label,
            "option2": catalog.intents[match.runner_up].label,
        }
        return render_system(catalog, "clarify", channel, {**(variables or {}), **labels})
    return render_intent(catalog, match.intent, channel, variables)
