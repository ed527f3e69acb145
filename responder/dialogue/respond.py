"""The line's core: message in, match and reviewed reply out. No Flask here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from responder.dialogue.replies import Reply, render_reply
from responder.nlu.catalog import Catalog, load_catalog
from responder.nlu.matcher import Match, Matcher, Thresholds

# A message longer than Twilio's 1,600-character maximum is cut before matching
# (twilio.com/docs/glossary/what-sms-character-limit).
MAX_MESSAGE_CHARS = 1600


@dataclass(frozen=True)
class Answer:
    """What the line says to one message, and why."""

    match: Match
    reply: Reply

    @property
    def language(self) -> str:
        """The language of the reply."""
        return self.reply.language


class Responder:
    """Load the intents once; answer many messages on any channel."""

    def __init__(
        self,
        catalog: Catalog,
        thresholds: Thresholds | None = None,
        model_file: Path | str | None = None,
    ) -> None:
        self.catalog = catalog
        self.matcher = Matcher(catalog, thresholds, model_file=model_file)

    @classmethod
    def from_directory(
        cls,
        directory: Path | str,
        thresholds: Thresholds | None = None,
        model_file: Path | str | None = None,
    ) -> Responder:
        """Build a responder from an intents folder (validated on load) and its model file."""
        return cls(load_catalog(directory), thresholds, model_file)

    def match(self, text: str) -> Match:
        """Classify one message (capped and cleaned first)."""
        return self.matcher.match(clean_text(text))

    def answer(
        self,
        text: str,
        channel: str = "sms",
        variables: Mapping[str, str] | None = None,
        language: str | None = None,
    ) -> Answer:
        """Match the message and render the channel's template.

        The reply is in `language` when given, else in the message's own language
        when the catalog has it, else in the catalog's base language.
        """
        match = self.match(text)
        return Answer(match, self.reply(match, channel, variables, language))

    def reply(
        self,
        match: Match,
        channel: str,
        variables: Mapping[str, str] | None = None,
        language: str | None = None,
    ) -> Reply:
        """Render the reply to a match in `language` (or the message's own)."""
        chosen = language or match.language
        return render_reply(self.catalog.localized(chosen), match, channel, variables)


def clean_text(text: str | None) -> str:
    """Cap the length and drop NUL and control characters that no person typed."""
    text = (text or "")[:MAX_MESSAGE_CHARS]
    if text.isprintable():  # nearly every message: no character to look at one by one
        return text
    return "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in text)
