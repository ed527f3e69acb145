"""The clinic's alert SMS says how the patient reached the line."""

import pytest

from responder.frontdesk.clinics import Clinic
from responder.frontdesk.escalation import sms_text
from responder.store.escalation_outbox import Escalation


@pytest.mark.parametrize(("channel", "verb"), [("sms", "texted"), ("voice", "called")])
def test_alert_names_the_channel(channel: str, verb: str) -> None:
    clinic = Clinic(id="c1", name="Riverside Physio", numbers=("+15550001000",), phone="555")
    row = Escalation(intent="red_flag", channel=channel, our_number="+15550001000",
                     patient_number="+15557654321", patient_last4="4321",
                     body="calf swollen and hot")
    text = sms_text(row, clinic)
    assert f"+15557654321 {verb} +15550001000" in text
    assert "RED FLAG" in text and "Riverside Physio" in text


def test_a_resent_alert_says_nobody_acknowledged_it() -> None:
    clinic = Clinic(id="c1", name="Riverside Physio", numbers=("+15550001000",), phone="555")
    row = Escalation(event_key="resend-7", intent="red_flag", channel="sms",
                     our_number="+15550001000", patient_number="+15557654321",
                     patient_last4="4321", body="calf swollen and hot")
    assert "NOT ACKNOWLEDGED RED FLAG" in sms_text(row, clinic)
