"""What the clinic API and the staff console show for one forwarded question. No Flask.

Staff relay the reply themselves, so they get more than a patient does: the
language it is in and the same reply in the line's other languages (to copy
for a patient who reads those), and for a possible warning sign the check
question with the answers for YES and for NO instead of the question alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from responder.dialogue.language import follow_language, offered_languages
from responder.dialogue.replies import CheckReplies, Reply, check_replies, render_intent
from responder.dialogue.respond import Responder
from responder.nlu.matcher import Match


@dataclass(frozen=True)
class StaffAnswer:
    """The match, the reply in its language, and what staff may need beside it."""

    match: Match
    reply: Reply
    check: CheckReplies | None = None
    # The same reply in each other language of the line: language -> text.
    other_languages: Mapping[str, str] = field(default_factory=dict)

    @property
    def language(self) -> str:
        """The language of `reply`."""
        return self.reply.language


def staff_answer(
    responder: Responder,
    text: str,
    channel: str,
    variables: Mapping[str, str] | None,
    language: str | None = None,
) -> StaffAnswer:
    """Match a forwarded question; reply in `language`, else the message's own."""
    catalog = responder.catalog
    match = responder.match(text)
    default = offered_languages(variables, catalog.languages)[0]
    chosen = language or follow_language(match, None, default, catalog.languages)
    check = None
    if match.check:
        check = check_replies(catalog.localized(chosen), match, channel, variables)

    def reply_in(lang: str) -> Reply:
        if match.check:  # the advice for NO; the question and YES text are in `check`
            return render_intent(catalog.localized(lang), match.intent, channel, variables)
        return responder.reply(match, channel, variables, lang)

    others = {lang: reply_in(lang).text for lang in catalog.languages if lang != chosen}
    return StaffAnswer(match, reply_in(chosen), check, others)
