"""The clinic front desk: clinic profiles, the JSON API, the staff console and escalation.

Each clinic owns some Twilio numbers: its profile names it in replies, its
API keys reach `POST /api/v1/replies` (described in openapi.yaml), its staff
sign in to `/console` (templates/, static/), and a red flag on its number
queues an alert in the store's outbox that a worker delivers.
`install_frontdesk(app)` wires all of it into the app.
"""

from responder.frontdesk.clinics import (
    Clinic,
    ClinicDirectory,
    StaffUser,
    clinic_for_number,
    hash_api_key,
    load_clinics,
    new_api_key,
    variables_for_clinic,
    variables_for_number,
)
from responder.frontdesk.escalation import (
    DeliveryError,
    deliver_due,
    install_escalation,
    queue_escalation,
    run_worker,
)
from responder.frontdesk.install import install_frontdesk

__all__ = [
    "Clinic",
    "ClinicDirectory",
    "DeliveryError",
    "StaffUser",
    "clinic_for_number",
    "deliver_due",
    "hash_api_key",
    "install_escalation",
    "install_frontdesk",
    "load_clinics",
    "new_api_key",
    "queue_escalation",
    "run_worker",
    "variables_for_clinic",
    "variables_for_number",
]
