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

    def answer(
        self, text: str, channel: str = "sms", variables: Mapping[str, str] | None = None
    ) -> Answer:
        """Match the message and render the channel's template."""
        match = self.matcher.match(clean_text(text))
        return Answer(match, render_reply(self.catalog, match, channel, variables))


def clean_text(text: str | None) -> str:
    """Cap the length and drop NUL and control characters that no person typed."""
    text = (text or "")[:MAX_MESSAGE_CHARS]
    return "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in text)
