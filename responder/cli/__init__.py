"""The `calfline` command line, one module per command group.

calfline.py holds the parser and the line's own commands (serve, chat,
classify, eval); frontdesk.py the clinic set-up commands (clinic-key,
password-hash, escalations); store.py retention (purge); call_terminal.py
the simulated phone call of `chat --voice`. `twilio-setup` lives with the
channels (responder.channels.twilio_setup). Top layer: may use any other.
"""

from responder.cli.calfline import COMMANDS, build_parser, main

__all__ = ["COMMANDS", "build_parser", "main"]
