"""Helpers for the front desk workflow tests: signed texts in, rows out."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from responder.store.escalation_outbox import Escalation
from responder.store.inbox_items import InboxItem
from responder.store.message_statuses import MessageStatus
from responder.store.models import Conversation, Message
from tests.frontdesk.conftest import PUBLIC_URL
from tests.twilio_signing import sign


def text_in(app: Flask, body: str, sid: str, sender: str, to: str) -> str | None:
    """POST a signed inbound SMS as Twilio would; return the reply text (None: nothing)."""
    form = {"From": sender, "To": to, "Body": body, "MessageSid": sid}
    response = app.test_client().post(
        "/sms", data=form, headers={"X-Twilio-Signature": sign(PUBLIC_URL + "/sms", form)})
    assert response.status_code == 200, response.data
    messages = ET.fromstring(response.data).findall("Message")
    assert ET.fromstring(response.data).tag == "Response"
    return (messages[0].text or "") if messages else None


def status_callback(app: Flask, sid: str, status: str, signed: bool = True,
                    **extra: str) -> int:
    """POST one of Twilio's status callbacks to /twilio/status."""
    form = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC" + "0" * 32, **extra}
    signature = sign(PUBLIC_URL + "/twilio/status", form) if signed else "bad"
    response = app.test_client().post("/twilio/status", data=form,
                                      headers={"X-Twilio-Signature": signature})
    return response.status_code


def rows(app: Flask, model: Any, *where: Any) -> list[Any]:
    """Every row of a table (matching `where`), detached."""
    engine = app.extensions["calfline_store"].engine
    with Session(engine) as session:
        found = list(session.scalars(select(model).where(*where).order_by(model.id)))
        session.expunge_all()
        return found


def items(app: Flask) -> list[InboxItem]:
    return rows(app, InboxItem)


def alerts(app: Flask) -> list[Escalation]:
    return rows(app, Escalation)


def statuses(app: Flask, sid: str) -> list[str]:
    return [r.status for r in rows(app, MessageStatus, MessageStatus.message_sid == sid)]


def conversation(app: Flask, conversation_id: int) -> Conversation:
    (row,) = rows(app, Conversation, Conversation.id == conversation_id)
    return row


def messages(app: Flask, conversation_id: int) -> list[Message]:
    return rows(app, Message, Message.conversation_id == conversation_id)
