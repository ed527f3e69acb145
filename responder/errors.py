"""CalfLine's exceptions.

    CalfLineError
    ├── IntentDataError   an intents/ file is missing, malformed or unsafe
    ├── ConfigError       an environment setting has an unusable value
    ├── ClinicDataError   the clinics file is missing, malformed or unsafe
    └── StoreUnavailable  the database failed or missed its time budget for one webhook
"""


class CalfLineError(Exception):
    """Base class for every error CalfLine raises on purpose."""


class IntentDataError(CalfLineError):
    """Raise when an intents/ file cannot be used; the message names file and field."""

    def __init__(self, path: object, field: str, problem: str) -> None:
        super().__init__(f"{path}: field '{field}': {problem}")
        self.path = path
        self.field = field
        self.problem = problem


class ConfigError(CalfLineError):
    """Raise when a configuration value cannot be used."""


class ClinicDataError(CalfLineError):
    """Raise when the clinics file cannot be used; the message names file and field."""

    def __init__(self, path: object, field: str, problem: str) -> None:
        super().__init__(f"{path}: field '{field}': {problem}")
        self.path = path
        self.field = field
        self.problem = problem


class StoreUnavailable(CalfLineError):
    """Raise when the database failed, or did not answer in time, for one piece of work.

    Webhooks catch it and answer without the database (responder/channels/outage.py).
    """
