"""`calfline chat`, `classify`, `eval` and `train`: the matcher from the terminal."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from responder.dialogue.conversation import ConversationState, respond
from responder.dialogue.language import follow_language, offered_languages
from responder.dialogue.respond import Responder
from responder.nlu.catalog import CHANNELS, LANGUAGES, load_catalog
from responder.nlu.evaluation import Verdict
from responder.web.config import build_responder, from_environment


def _responder() -> Responder:
    return build_responder(from_environment())


def _variables() -> dict[str, str]:
    config = from_environment()
    # Empty values fall back to the templates' neutral words in the reply's language.
    return {
        "clinic_name": config["CLINIC_NAME"],
        "clinic_phone": config["CLINIC_PHONE"],
        "emergency_number": config["EMERGENCY_NUMBER"],
        "languages": config["LANGUAGES"],
    }


def cmd_chat(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    """Talk to the line in the terminal as if texting it, with the webhook's context."""
    responder = _responder()
    variables = _variables()
    if args.voice:  # a simulated phone call: greeting, turns, re-prompts, turn limit
        from responder.cli.call_terminal import play_call

        return play_call(responder, variables, stdin, stdout)
    window = timedelta(minutes=float(from_environment()["CONTEXT_MINUTES"]))
    state = ConversationState()
    interactive = stdin.isatty()
    print("CalfLine chat. Type a message; Ctrl-D or 'quit' to leave.", file=stdout)
    while True:
        if interactive:
            print("you> ", end="", file=stdout, flush=True)
        line = stdin.readline()
        if not line or line.strip().lower() in {"quit", "exit"}:
            return 0
        turn = respond(responder, line.rstrip("\n"), "sms", variables, state,
                       datetime.now(UTC), window)
        state = turn.state
        tag = f"[{turn.match.intent} {turn.match.care} {turn.match.confidence:.2f}]"
        print(f"calfline> {turn.reply.text or '(no reply: opted out)'} {tag}", file=stdout,
              flush=True)


def classify_record(responder: Responder, text: str, channel: str,
                    variables: dict[str, str], language: str | None = None) -> dict[str, Any]:
    """Return what `classify` prints for one message."""
    match = responder.match(text)
    detected = follow_language(match, None, language or catalog_default(variables, responder),
                               responder.catalog.languages)
    reply = responder.reply(match, channel, variables, language or detected)
    return {
        "text": text,
        "language": reply.language,
        "detected_language": match.language,
        "language_confidence": match.language_confidence,
        "intent": match.intent,
        "care": match.care,
        "confidence": match.confidence,
        "runner_up": match.runner_up,
        "red_flag_probability": match.red_flag_probability,
        "signs": list(match.present_signs),
        "reply": reply.text,
    }


def catalog_default(variables: dict[str, str], responder: Responder) -> str:
    """The default language of the line (CALFLINE_LANGUAGES' first)."""
    return offered_languages(variables, responder.catalog.languages)[0]


def cmd_classify(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    """Read one message per line; write one JSON object per line."""
    responder = _responder()
    variables = _variables()
    for line in stdin:
        record = classify_record(responder, line.rstrip("\r\n"), args.channel, variables,
                                 args.language)
        stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        stdout.flush()
    return 0


def cmd_eval(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    """Score the matcher, and the plain baseline fitted on the same data, on a labelled TSV."""
    from responder.nlu.evaluation import baseline_predictor, evaluate, format_report, read_tsv

    responder = _responder()
    examples = read_tsv(Path(args.file), args.language)
    catalog = responder.catalog

    def predict(example: Any) -> Verdict:
        match = responder.matcher.match(example.text)
        # The reply language of a first message on a number whose default is English.
        said = follow_language(match, None, catalog.language, catalog.languages)
        return Verdict(match.intent, match.care, said)

    report = evaluate(examples, predict)
    baseline = None if args.no_baseline else evaluate(
        examples, baseline_predictor(responder.catalog))
    if args.json:
        keep = {k: v for k, v in report.items() if k != "errors" or args.errors}
        if baseline:
            keep["baseline"] = {k: v for k, v in baseline.items() if k != "errors"}
        json.dump(keep, stdout, indent=2)
        stdout.write("\n")
        return 0
    stdout.write(format_report(report, baseline) + "\n")
    if args.errors:
        for e in report["errors"]:
            stdout.write(f"{e['channel']}\t{e['expected']}\t{e['predicted']}\t{e['care']}\t"
                         f"{e['text']}\n")
    return 0


def cmd_train(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    """Fit the model on intents/ and store it (where CALFLINE_MODEL_PATH says)."""
    from responder.nlu.matcher import MessageReader, model_path, train_model
    from responder.nlu.model import StaleModelError, catalog_fingerprint, load_model

    config = from_environment()
    catalog = load_catalog(config["INTENTS_DIR"])
    path = Path(config["MODEL_PATH"] or model_path(catalog))
    if args.if_stale:
        try:
            load_model(path, catalog_fingerprint(catalog))
            print(f"{path}: up to date with {catalog.directory}", file=stdout)
            return 0
        except StaleModelError:
            pass
    started = time.perf_counter()
    train_model(catalog, MessageReader(catalog), path)
    print(f"{path}: fitted on {catalog.directory} in {time.perf_counter() - started:.1f} s",
          file=stdout)
    return 0


def add_matching_commands(sub: Any) -> None:
    """Add chat, classify, eval and train to the `calfline` parser."""
    chat = sub.add_parser("chat", help="talk to the line in the terminal")
    chat.add_argument("--voice", action="store_true", help="answer as on a phone call")
    classify = sub.add_parser("classify", help="classify messages from stdin as JSON lines")
    classify.add_argument("--channel", choices=CHANNELS, default="sms")
    classify.add_argument("--language", choices=LANGUAGES, default=None,
                          help="reply in this language (default: detect it per message)")
    evaluate = sub.add_parser("eval", help="measure accuracy on a labelled TSV")
    evaluate.add_argument("file", help="TSV whose header names channel, intent and text")
    evaluate.add_argument("--json", action="store_true", help="write the report as JSON")
    evaluate.add_argument("--language", choices=LANGUAGES, default=None,
                          help="the language every reply should be in (else a language column)")
    evaluate.add_argument("--errors", action="store_true", help="also list misclassified rows")
    evaluate.add_argument("--no-baseline", action="store_true",
                          help="skip fitting the TF-IDF + LogisticRegression baseline")
    train = sub.add_parser("train", help="fit the model on intents/ and store it")
    train.add_argument("--if-stale", action="store_true",
                       help="only when the stored model is missing or from other intents")


MATCHING_COMMANDS = {"chat": cmd_chat, "classify": cmd_classify, "eval": cmd_eval,
                     "train": cmd_train}
