"""The `calfline` command: serve, and the command groups of responder/cli/."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from responder.channels.twilio_setup import add_twilio_setup_command, cmd_twilio_setup
from responder.cli.frontdesk import FRONTDESK_COMMANDS, add_frontdesk_commands
from responder.cli.matching import MATCHING_COMMANDS, add_matching_commands
from responder.cli.store import STORE_COMMANDS, add_store_commands
from responder.errors import CalfLineError


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the web service with the embedded defaults (no Twilio account needed)."""
    from werkzeug.serving import run_simple

    from responder import create_app

    app = create_app()
    print(f"CalfLine listening on http://{args.host}:{args.port} (GET /healthz)", flush=True)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Describe the command line."""
    parser = argparse.ArgumentParser(prog="calfline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the web service locally")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=5000)
    add_matching_commands(sub)
    add_twilio_setup_command(sub)
    add_frontdesk_commands(sub)
    add_store_commands(sub)
    return parser


COMMANDS: dict[str, Callable[..., int]] = {
    "twilio-setup": cmd_twilio_setup,
    **MATCHING_COMMANDS, **FRONTDESK_COMMANDS, **STORE_COMMANDS,
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
