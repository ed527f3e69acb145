"""The comparison point for bench/webhook_load.py: a Flask endpoint that does nothing.

Served by the same gunicorn config, it answers POST /sms with a fixed TwiML
document, so the difference in the figures is CalfLine's own work: signature
check, rate limits, matching, the conversation store and the request log.
"""

from flask import Flask, Response

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>ok</Message></Response>'

app = Flask(__name__)


@app.post("/sms")
def sms() -> Response:
    """Answer with the same fixed TwiML to every request."""
    return Response(TWIML, mimetype="application/xml")


@app.get("/healthz")
def healthz() -> dict[str, str]:
    """Answer 200 so the benchmark knows the server is up."""
    return {"status": "ok"}
