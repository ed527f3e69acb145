"""The comparison point for bench/webhook_load.py: a Flask endpoint that does nothing.

Served by the same gunicorn config, it reads the posted form and answers POST
/sms with a fixed TwiML document: the bare endpoint of issue 14 ("reads the
form and returns fixed TwiML"), as any webhook has to read what Twilio sent.
The difference in the figures is CalfLine's own work: signature check, rate
limits, matching, the conversation store and the request log.
"""

from flask import Flask, Response, request

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>ok</Message></Response>'

app = Flask(__name__)


@app.post("/sms")
def sms() -> Response:
    """Read the form, then answer with the same fixed TwiML to every request."""
    if not request.form.get("Body"):
        return Response("no Body", status=400)
    return Response(TWIML, mimetype="application/xml")


@app.get("/healthz")
def healthz() -> dict[str, str]:
    """Answer 200 so the benchmark knows the server is up."""
    return {"status": "ok"}
