"""Sign test requests exactly as Twilio does, with twilio's own RequestValidator."""

from __future__ import annotations

from collections.abc import Mapping

from flask.testing import FlaskClient
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

from responder.store.models import Conversation, Message

TOKEN = "test-auth-token-0123456789abcdef"
LOCAL_URL = "http://localhost/sms"  # what the Flask test client's requests look like


def sign(url: str, form: Mapping[str, str], token: str = TOKEN) -> str:
    """Return the X-Twilio-Signature Twilio would send for this URL and form."""
    return str(RequestValidator(token).compute_signature(url, dict(form)))


def signed_post(client: FlaskClient, form: Mapping[str, str], url: str = LOCAL_URL,
                path: str = "/sms", headers: Mapping[str, str] | None = None,
                token: str = TOKEN) -> TestResponse:
    """POST a form with a valid signature for `url` (the URL Twilio was configured with)."""
    all_headers = {"X-Twilio-Signature": sign(url, form, token), **(headers or {})}
    return client.post(path, data=dict(form), headers=all_headers)


def count_messages(client: FlaskClient) -> int:
    """Return how many message rows (inbound and replies) the app's store holds."""
    store = client.application.extensions["calfline_store"]
    with store.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(Message)) or 0)


def count_conversations(client: FlaskClient) -> int:
    """Return how many conversation rows the app's store holds."""
    store = client.application.extensions["calfline_store"]
    with store.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(Conversation)) or 0)
