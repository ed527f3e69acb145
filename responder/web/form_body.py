"""Url-encoded form bodies read in one step: every Twilio webhook is one.

werkzeug reads a form through a parser object, a limited stream and Flask's
config look-ups for limits that apply to multipart bodies only; for a small
url-encoded body with a Content-Length that costs about as much again as the
parse itself (bench/webhook_load.py, README "Performance"). FormRequest
reads such a body straight from the WSGI input and parses it as werkzeug
does; any other body, or one whose stream was already touched, goes to
werkzeug unchanged.
"""

from __future__ import annotations

import io
from urllib.parse import parse_qsl

from flask import Request
from werkzeug.exceptions import ClientDisconnected

URLENCODED = "application/x-www-form-urlencoded"


class FormRequest(Request):
    """Flask's request, with a direct read of a url-encoded body of known length."""

    def _load_form_data(self) -> None:
        size = self._direct_form_size()
        if size is None:
            super()._load_form_data()
            return
        body = self.environ["wsgi.input"].read(size)
        if len(body) != size:  # what werkzeug's LimitedStream raises (a 400)
            raise ClientDisconnected()
        try:
            # As werkzeug's own url-encoded parser: blank values kept, bad escapes kept
            # as text, a body that is not UTF-8 read as an empty form.
            items = parse_qsl(body.decode(), keep_blank_values=True,
                              errors="werkzeug.url_quote")
        except ValueError:
            items = []
        values = self.__dict__
        values["stream"] = io.BytesIO()  # consumed, as werkzeug leaves it
        values["form"] = self.parameter_storage_class(items)
        values["files"] = self.parameter_storage_class()

    def _direct_form_size(self) -> int | None:
        """The body's length when it can be read directly, else None (werkzeug reads it).

        Only an exact url-encoded Content-Type, a plain decimal Content-Length within
        MAX_CONTENT_LENGTH (werkzeug answers 413 above it), and a stream nobody read.
        """
        values, environ = self.__dict__, self.environ
        if "form" in values or "stream" in values or environ.get("CONTENT_TYPE") != URLENCODED:
            return None
        length = environ.get("CONTENT_LENGTH")
        if not length or not (length.isascii() and length.isdigit()):
            return None
        size = int(length)
        limit = self.max_content_length
        return None if limit is not None and size > limit else size
