"""Measure the matcher on a labelled TSV: channel, intent, text."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from responder.errors import CalfLineError

HEADER = ["channel", "intent", "text"]
_HEADER_LINE = "\t".join(HEADER)


class EvalFileError(CalfLineError):
    """Raise when the TSV to evaluate does not have the expected shape."""


@dataclass(frozen=True)
class Example:
    """One labelled message."""

    channel: str
    intent: str
    text: str


def read_tsv(path: Path) -> list[Example]:
    """Read a header `channel<TAB>intent<TAB>text` TSV; quotes are plain text."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or [c.strip().lower() for c in rows[0]] != HEADER:
        raise EvalFileError(f"{path}: first line must be the header {_HEADER_LINE!r}")
    examples = []
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 3:
            raise EvalFileError(f"{path}:{number}: expected 3 tab-separated fields")
        examples.append(Example(row[0].strip(), row[1].strip(), row[2]))
    return examples


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def evaluate(examples: Iterable[Example], predict: Callable[[str], str]) -> dict[str, Any]:
    """Return accuracy, per-intent precision/recall/F1, red_flag recall and confusions."""
    pairs = [(e, predict(e.text)) for e in examples]
    gold = Counter(e.intent for e, _ in pairs)
    guessed = Counter(p for _, p in pairs)
    right = Counter(e.intent for e, p in pairs if e.intent == p)
    per_intent = {}
    for intent in sorted(set(gold) | set(guessed)):
        precision = right[intent] / guessed[intent] if guessed[intent] else 0.0
        recall = right[intent] / gold[intent] if gold[intent] else 0.0
        per_intent[intent] = {
            "precision": round(precision, 4), "recall": round(recall, 4),
            "f1": round(_f1(precision, recall), 4), "support": gold[intent],
        }
    channels = {}
    for channel in sorted({e.channel for e, _ in pairs}):
        subset = [(e, p) for e, p in pairs if e.channel == channel]
        channels[channel] = round(sum(e.intent == p for e, p in subset) / len(subset), 4)
    confusions = Counter((e.intent, p) for e, p in pairs if e.intent != p)
    total = len(pairs)
    return {
        "count": total,
        "accuracy": round(sum(right.values()) / total, 4) if total else 0.0,
        "accuracy_by_channel": channels,
        "red_flag_recall": per_intent.get("red_flag", {}).get("recall", 1.0),
        "per_intent": per_intent,
        "confusions": [
            {"expected": g, "predicted": p, "count": n} for (g, p), n in confusions.most_common()
        ],
        "errors": [
            {"channel": e.channel, "expected": e.intent, "predicted": p, "text": e.text}
            for e, p in pairs if e.intent != p
        ],
    }


def format_report(report: dict[str, Any]) -> str:
    """Render the evaluation as a plain-text table."""
    lines = [
        f"messages: {report['count']}",
        f"accuracy: {report['accuracy']:.4f}",
        "accuracy by channel: " + ", ".join(
            f"{c} {a:.4f}" for c, a in report["accuracy_by_channel"].items()
        ),
        f"red_flag recall: {report['red_flag_recall']:.4f}",
        "",
        f"{'intent':<20} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}",
    ]
    for intent, m in report["per_intent"].items():
        lines.append(
            f"{intent:<20} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>7.3f} "
            f"{m['support']:>8}"
        )
    lines += ["", "confusions (expected -> predicted: count):"]
    lines += [f"  {c['expected']} -> {c['predicted']}: {c['count']}" for c in report["confusions"]]
    return "\n".join(lines)
