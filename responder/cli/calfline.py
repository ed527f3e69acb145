"""The `calfline` command: serve, chat, classify, eval."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from responder.channels.twilio_setup import add_twilio_setup_command, cmd_twilio_setup
from responder.cli.frontdesk import FRONTDESK_COMMANDS, add_frontdesk_commands
from responder.cli.store import STORE_COMMANDS, add_store_commands
from responder.dialogue.replies import template_variables
from responder.dialogue.respond import Responder
from responder.errors import CalfLineError
from responder.nlu.catalog import CHANNELS
from responder.nlu.matcher import Thresholds
from responder.web.config import from_environment


def _responder() -> Responder:
    config = from_environment()
    thresholds = Thresholds(config["FALLBACK_THRESHOLD"], config["AMBIGUITY_MARGIN"])
    return Responder.from_directory(config["INTENTS_DIR"], thresholds)


def _variables() -> dict[str, str]:
    config = from_environment()
    return template_variables({
        "clinic_name": config["CLINIC_NAME"],
        "clinic_phone": config["CLINIC_PHONE"],
        "emergency_number": config["EMERGENCY_NUMBER"],
    })


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the web service with the embedded defaults (no Twilio account needed)."""
    from werkzeug.serving import run_simple

    from responder import create_app

    app = create_app()
    print(f"CalfLine listening on http://{args.host}:{args.port} (GET /healthz)", flush=True)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)
    return 0


def cmd_chat(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    """Talk to the line in the terminal as if texting it."""
    responder = _responder()
    variables = _variables()
    if args.voice:  # a simulated phone call: greeting, turns, re-prompts, turn limit
        from responder.cli.call_terminal import play_call

        return play_call(responder, variables, stdin, stdout)
    channel = "voice" if args.voice else "sms"
    interactive = stdin.isatty()
    print("CalfLine chat. Type a message; Ctrl-D or 'quit' to leave.", file=stdout)
    while True:
        if interactive:
            print("you> ", end="", file=stdout, flush=True)
        line = stdin.readline()
        if not line or line.strip().lower() in {"quit", "exit"}:
            return 0
        answer = responder.answer(line.rstrip("\n"), channel, variables)
        tag = f"[{answer.match.intent} {answer.match.confidence:.2f}]"
        print(f"calfline> {answer.reply.text or '(no reply: opted out)'} {tag}", file=stdout,
              flush=True)


def cmd_classify(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    """Read one message per line; write one JSON object per line."""
    responder = _responder()
    variables = _variables()
    for line in stdin:
        text = line.rstrip("\r\n")
        answer = responder.answer(text, args.channel, variables)
        record = {
            "text": text,
            "intent": answer.match.intent,
            "confidence": answer.match.confidence,
            "runner_up": answer.match.runner_up,
            "reply": answer.reply.text,
        }
        stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        stdout.flush()
    return 0


def cmd_eval(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    """Score the matcher on a labelled TSV and print the figures."""
    from responder.nlu.evaluation import evaluate, format_report, read_tsv

    responder = _responder()
    report = evaluate(read_tsv(Path(args.file)), lambda t: responder.matcher.match(t).intent)
    if args.json:
        json.dump({k: v for k, v in report.items() if k != "errors" or args.errors}, stdout,
                  indent=2)
        stdout.write("\n")
    else:
        stdout.write(format_report(report) + "\n")
        if args.errors:
            for e in report["errors"]:
                stdout.write(f"{e['channel']}\t{e['expected']}\t{e['predicted']}\t{e['text']}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Describe the command line."""
    parser = argparse.ArgumentParser(prog="calfline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the web service locally")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=5000)
    chat = sub.add_parser("chat", help="talk to the line in the terminal")
    chat.add_argument("--voice", action="store_true", help="answer as on a phone call")
    classify = sub.add_parser("classify", help="classify messages from stdin as JSON lines")
    classify.add_argument("--channel", choices=CHANNELS, default="sms")
    evaluate = sub.add_parser("eval", help="measure accuracy on a labelled TSV")
    evaluate.add_argument("file", help="TSV with header channel<TAB>intent<TAB>text")
    evaluate.add_argument("--json", action="store_true", help="write the report as JSON")
    evaluate.add_argument("--errors", action="store_true", help="also list misclassified rows")
    add_twilio_setup_command(sub)
    add_frontdesk_commands(sub)
    add_store_commands(sub)
    return parser


COMMANDS: dict[str, Callable[..., int]] = {
    "twilio-setup": cmd_twilio_setup,
    "chat": cmd_chat, "classify": cmd_classify, "eval": cmd_eval, **FRONTDESK_COMMANDS,
    **STORE_COMMANDS,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    # Piped stdin/stdout must be UTF-8 whatever the locale: messages carry emoji.
    for stream in (sys.stdin, sys.stdout):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure:
            reconfigure(encoding="utf-8", errors="replace")
    try:
        if args.command == "serve":
            return cmd_serve(args)
        return COMMANDS[args.command](args, sys.stdin, sys.stdout)
    except (CalfLineError, OSError) as exc:
        print(f"calfline: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
