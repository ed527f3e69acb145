"""`calfline chat --voice`: a phone call in the terminal, typed text standing in for speech."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO

from responder.dialogue.call_flow import (
    CallFlow,
    CallState,
    Connect,
    HangUp,
    Heard,
    Listen,
    Speak,
    Step,
    call_rules,
)
from responder.dialogue.respond import Responder
from responder.web.config import from_environment

KEYS = frozenset("0123456789*#")
INTRO = (
    "CalfLine call. Type what you would say; a single digit is a key press; "
    "an empty line is silence; Ctrl-D or 'quit' hangs up."
)


def heard_from_line(line: str) -> Heard:
    """Read a typed line as a transcript (confidence unknown) or a key press."""
    text = line.strip()
    if len(text) == 1 and text in KEYS:
        return Heard(digits=text)
    return Heard(speech=text)


def print_step(step: Step, stdout: TextIO) -> CallState | None:
    """Print what the line would say and do; return the state to listen with, if any."""
    if step.match is not None:
        print(f"[{step.match.intent} {step.match.confidence:.2f}]", file=stdout)
    listening = None
    for action in step.actions:
        if isinstance(action, Speak):
            print(f"calfline> {'(slowly) ' if action.slow else ''}{action.text}", file=stdout)
        elif isinstance(action, Listen):
            if action.prompt:
                print(f"calfline> {action.prompt}", file=stdout)
            print(f"[listening, turn {action.state.turn}]", file=stdout)
            listening = action.state
        elif isinstance(action, Connect):
            print(f"[dialing {action.number}]", file=stdout)
        elif isinstance(action, HangUp):
            print("[call ended]", file=stdout)
    stdout.flush()
    return listening


def play_call(
    responder: Responder,
    variables: Mapping[str, str],
    stdin: TextIO,
    stdout: TextIO,
    config: Mapping[str, object] | None = None,
) -> int:
    """Run one simulated call until the line hangs up or the caller does."""
    flow = CallFlow(responder, call_rules(config or from_environment()), variables)
    interactive = stdin.isatty()
    print(INTRO, file=stdout)
    state = print_step(flow.start(), stdout)
    while state is not None:
        if interactive:
            print("caller> ", end="", file=stdout, flush=True)
        line = stdin.readline()
        if not line or line.strip().lower() in {"quit", "exit"}:
            print("[caller hung up]", file=stdout)
            return 0
        state = print_step(flow.answer(state, heard_from_line(line)), stdout)
    return 0
