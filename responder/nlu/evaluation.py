"""Measure the matcher on a labelled TSV, beside a plain baseline fitted on the same data.

The TSV has a header naming at least `channel`, `intent` and `text` (a `care`
column may stand between them; it is not needed: a red flag is caught when
its answer's care is emergency, urgent or check).
Figures: accuracy overall and per channel, red flags caught, non-urgent
messages given the urgent reply (false urgent) or a check question, per
intent precision/recall/F1, confusions. The baseline is the one the
developers' guide names: scikit-learn TF-IDF (word 1-2 + char_wb 2-5 grams)
+ LogisticRegression trained on the intents/ examples.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from responder.errors import CalfLineError
from responder.nlu.catalog import Catalog

REQUIRED = ("channel", "intent", "text")
CAUGHT = frozenset({"emergency", "urgent", "check"})
URGENT = frozenset({"emergency", "urgent"})


class EvalFileError(CalfLineError):
    """Raise when the TSV to evaluate does not have the expected shape."""


@dataclass(frozen=True)
class Example:
    """One labelled message."""

    channel: str
    intent: str
    text: str
    language: str | None = None  # the language the reply should be in, when known


@dataclass(frozen=True)
class Verdict:
    """What a predictor said: the intent and the care level."""

    intent: str
    care: str
    language: str | None = None  # the language the line would answer in


def read_tsv(path: Path, language: str | None = None) -> list[Example]:
    """Read a TSV whose header names channel, intent and text; quotes are plain text.

    The expected reply language is the file's `language` column, else `language`.
    """
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if not all(name in header for name in REQUIRED):
        raise EvalFileError(f"{path}: the header must name the columns {list(REQUIRED)}")
    where = {name: header.index(name) for name in REQUIRED}
    examples = []
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise EvalFileError(f"{path}:{number}: expected {len(header)} tab-separated fields")
        said = row[header.index("language")].strip() if "language" in header else language
        channel, intent, text = (row[where[n]].strip() if n != "text" else row[where[n]]
                                 for n in REQUIRED)
        examples.append(Example(channel, intent, text, said or None))
    return examples


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _ratio(hits: int, total: int) -> float:
    return round(hits / total, 4) if total else 0.0


def evaluate(examples: Iterable[Example], predict: Callable[[Example], Verdict]) -> dict[str, Any]:
    """Return accuracy, red-flag and care figures, per-intent scores and confusions."""
    pairs = [(e, predict(e)) for e in examples]
    gold = Counter(e.intent for e, _ in pairs)
    guessed = Counter(v.intent for _, v in pairs)
    right = Counter(e.intent for e, v in pairs if e.intent == v.intent)
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
        subset = [(e, v) for e, v in pairs if e.channel == channel]
        channels[channel] = _ratio(sum(e.intent == v.intent for e, v in subset), len(subset))
    flags = [v for e, v in pairs if e.intent == "red_flag"]
    # A red flag answered with the check question is caught, though its intent is
    # the calm answer for a NO: this figure counts it right, "accuracy" does not.
    checked_right = sum(e.intent == v.intent or (e.intent == "red_flag" and v.care == "check")
                        for e, v in pairs)
    calm = [v for e, v in pairs if e.intent != "red_flag"]
    confusions = Counter((e.intent, v.intent) for e, v in pairs if e.intent != v.intent)
    languages = [(e.language, v.language) for e, v in pairs if e.language and v.language]
    return {
        "language_accuracy": _ratio(sum(a == b for a, b in languages), len(languages))
        if languages else None,
        "count": len(pairs),
        "accuracy": _ratio(sum(right.values()), len(pairs)),
        "accuracy_by_channel": channels,
        "accuracy_checks_as_red_flags": _ratio(checked_right, len(pairs)),
        "red_flags": len(flags),
        "red_flags_caught": sum(v.care in CAUGHT for v in flags),
        "red_flags_urgent": sum(v.care in URGENT for v in flags),
        "non_urgent": len(calm),
        "false_urgent": sum(v.care in URGENT for v in calm),
        "checks_asked": sum(v.care == "check" for v in calm),
        "red_flag_recall": _ratio(sum(v.care in CAUGHT for v in flags), len(flags)) if flags
        else 1.0,
        "per_intent": per_intent,
        "confusions": [
            {"expected": g, "predicted": p, "count": n} for (g, p), n in confusions.most_common()
        ],
        "errors": [
            {"channel": e.channel, "expected": e.intent, "predicted": v.intent, "care": v.care,
             "text": e.text}
            for e, v in pairs if e.intent != v.intent or (e.intent != "red_flag") == (
                v.care in CAUGHT)
        ],
    }


def baseline_predictor(catalog: Catalog) -> Callable[[Example], Verdict]:
    """Fit the plain TF-IDF + LogisticRegression baseline on every intents/ example."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union
    from threadpoolctl import threadpool_limits

    texts = [text for text, _, _ in catalog.examples()]
    labels = [intent for _, intent, _ in catalog.examples()]
    pipeline = make_pipeline(
        make_union(TfidfVectorizer(analyzer="word", ngram_range=(1, 2)),
                   TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5))),
        LogisticRegression(max_iter=2000),
    )
    with threadpool_limits(1):
        pipeline.fit(texts, labels)

    def predict(example: Example) -> Verdict:
        intent = str(pipeline.predict([example.text])[0])
        return Verdict(intent, "urgent" if intent == "red_flag" else "none")

    return predict


def summary_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the headline figures of one report as (label, value) rows."""
    rows = [("messages", str(report["count"])), ("accuracy", f"{report['accuracy']:.4f}")]
    rows += [(f"accuracy {c}", f"{a:.4f}") for c, a in report["accuracy_by_channel"].items()]
    rows += [("  checked flag = ok", f"{report['accuracy_checks_as_red_flags']:.4f}")]
    flags, calm = report["red_flags"], report["non_urgent"]
    return rows + [
        ("red flags caught", f"{report['red_flags_caught']}/{flags}"),
        ("  of them urgent", f"{report['red_flags_urgent']}/{flags}"),
        ("false urgent", f"{report['false_urgent']}/{calm}"),
        ("checks asked", f"{report['checks_asked']}/{calm}"),
    ] + ([("reply language", f"{report['language_accuracy']:.4f}")]
         if report.get("language_accuracy") is not None else [])


def format_report(report: dict[str, Any], baseline: dict[str, Any] | None = None) -> str:
    """Render the evaluation (and the baseline's figures beside it) as plain text."""
    ours = summary_rows(report)
    theirs = dict(summary_rows(baseline)) if baseline else {}
    lines = [f"{'':<20}{'calfline':>12}" + (f"{'baseline':>12}" if baseline else "")]
    lines += [f"{label:<20}{value:>12}" + (f"{theirs.get(label, ''):>12}" if baseline else "")
              for label, value in ours]
    lines += ["", f"{'intent':<20} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}"]
    for intent, m in report["per_intent"].items():
        lines.append(f"{intent:<20} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>7.3f} "
                     f"{m['support']:>8}")
    lines += ["", "confusions (expected -> predicted: count):"]
    lines += [f"  {c['expected']} -> {c['predicted']}: {c['count']}" for c in report["confusions"]]
    return "\n".join(lines)
