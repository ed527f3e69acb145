"""Time the matcher per message, and how that grows with the intents' examples.

    python bench/matcher.py [--messages 10000] [--seed 7]

The matcher reads its fitted arrays with numpy; for comparison the same
intent model is also run through scikit-learn (TfidfVectorizer.transform +
CalibratedClassifierCV.predict_proba, one message per call, as a webhook does).

Messages are the development set (tests/data/dev.tsv) plus variations of it
the way people type: typos, doubled letters, dropped words, SMS tails. Each
call to Matcher.match is timed with time.perf_counter_ns after a warm-up on
the plain development set. The normalizer caches each word's spelling
correction, so two figures are printed: the first pass, where every new typo
is looked up (realistic traffic), and a second pass over the same messages,
where every word is cached. Then the catalog is grown to 2x and 4x its
examples with shuffled, padded copies that carry new words, so the
vocabulary, the speller's word list and the model all really grow (each
grown catalog is fitted anew: "build s" is that fit).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import platform
import random
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from responder.nlu.catalog import Catalog, load_catalog  # noqa: E402
from responder.nlu.matcher import Matcher, english_words  # noqa: E402

TAILS = ("pls", "thx", "!!", "??", "lol", "asap", "help", "tbh", "fyi", "x")


def dev_messages() -> list[str]:
    """Return the development set's message texts."""
    with open(ROOT / "tests" / "data" / "dev.tsv", encoding="utf-8", newline="") as handle:
        return [row["text"] for row in csv.DictReader(handle, delimiter="\t")]


def typo(word: str, rng: random.Random) -> str:
    """Return the word with one slip a thumb makes: swap, drop, double or replace a letter."""
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == 1:
        return word[:i] + word[i + 1:]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice(string.ascii_lowercase) + word[i + 1:]


def vary(text: str, rng: random.Random) -> str:
    """Return a variation of a message: a typo or two, maybe a tail or a dropped word."""
    words = text.split()
    for _ in range(rng.choice((0, 1, 1, 2))):
        if words:
            i = rng.randrange(len(words))
            words[i] = typo(words[i], rng)
    if len(words) > 4 and rng.random() < 0.2:
        del words[rng.randrange(len(words))]
    if rng.random() < 0.3:
        words.append(rng.choice(TAILS))
    if rng.random() < 0.2:
        words = [w.upper() for w in words]
    return " ".join(words)


def message_set(count: int, rng: random.Random) -> list[str]:
    """Return `count` messages: the development set first, then variations of it."""
    base = dev_messages()
    return (base + [vary(rng.choice(base), rng) for _ in range(count - len(base))])[:count]


def pseudo_word(rng: random.Random) -> str:
    """Return a made-up word of 5-9 letters, new to the vocabulary."""
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(5, 9)))


def scaled_catalog(catalog: Catalog, factor: int, rng: random.Random) -> Catalog:
    """Return the catalog with each scored intent's examples grown `factor` times."""
    intents = {}
    for intent_id, intent in catalog.intents.items():
        examples = list(intent.examples)
        if not intent.commands:  # command words stay exact; padding them means nothing
            for copy in range(1, factor):
                for text in intent.examples:
                    words = text.split()
                    rng.shuffle(words)
                    words += [pseudo_word(rng) for _ in range(1 + copy % 2)]
                    examples.append(" ".join(words))
        intents[intent_id] = dataclasses.replace(intent, examples=tuple(examples))
    return dataclasses.replace(catalog, intents=intents)


def time_pass(matcher: Matcher, messages: list[str]) -> list[float]:
    """Return microseconds per call for each message, in order."""
    timings = []
    clock = time.perf_counter_ns
    for text in messages:
        start = clock()
        matcher.match(text)
        timings.append((clock() - start) / 1000.0)
    return timings


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile (nearest rank) of the values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def measure(catalog: Catalog, english: frozenset[str], messages: list[str],
            warmup: list[str], model_file: Path) -> dict[str, float]:
    """Build (fit) a matcher, warm it up, and time a first and a second pass."""
    started = time.perf_counter()
    matcher = Matcher(catalog, english=english, model_file=model_file)
    build_s = time.perf_counter() - started
    for text in warmup:
        matcher.match(text)
    first = time_pass(matcher, messages)
    second = time_pass(matcher, messages)
    examples = sum(len(i.examples) for i in catalog.intents.values())
    return {
        "examples": examples,
        "vocabulary": len(matcher.model.vocabulary.index),
        "build_s": build_s,
        "median": statistics.median(first), "p99": percentile(first, 99),
        "mean": statistics.fmean(first),
        "median_cached": statistics.median(second), "p99_cached": percentile(second, 99),
    }


def sklearn_median(catalog: Catalog, messages: list[str]) -> float:
    """Median microseconds of scikit-learn's own transform + predict_proba, one message a call."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from responder.nlu.model import COMMAND_ONLY
    from responder.nlu.textmodel import analyze

    rows = [(t, i.id) for i in catalog.intents.values()
            if i.id not in COMMAND_ONLY | {"red_flag"} for t in i.examples]
    vectorizer = TfidfVectorizer(analyzer=analyze, sublinear_tf=True)
    matrix = vectorizer.fit_transform([t.lower() for t, _ in rows])
    model = CalibratedClassifierCV(LogisticRegression(C=10.0, max_iter=5000, solver="newton-cg"),
                                   method="temperature", cv=5, ensemble=False)
    model.fit(matrix, [label for _, label in rows])
    timings = []
    for text in messages:
        start = time.perf_counter_ns()
        model.predict_proba(vectorizer.transform([text.lower()]))
        timings.append((time.perf_counter_ns() - start) / 1000.0)
    return statistics.median(timings)


def machine() -> str:
    """Describe the machine: cores, CPU model, Python, load average before the run."""
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    load1, load5, _ = os.getloadavg()
    return (f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
            f"load average {load1:.2f}/{load5:.2f} before the run")


def main() -> int:
    """Print the figures; exit 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    catalog = load_catalog(ROOT / "intents")
    english = english_words()
    warmup = dev_messages()
    messages = message_set(args.messages, rng)
    print(machine())
    print(f"{len(messages)} messages ({len(warmup)} from tests/data/dev.tsv, the rest "
          "variations); warm-up: the development set once")
    print(f"{'examples':>9} {'x':>3} {'vocab':>6} {'build s':>8} {'median us':>10} "
          f"{'p99 us':>8} {'mean us':>8} {'cached med':>11} {'cached p99':>11}")
    results = []
    folder = Path(tempfile.mkdtemp(prefix="calfline-bench-"))
    for factor in (1, 2, 4):
        grown = catalog if factor == 1 else scaled_catalog(catalog, factor, random.Random(factor))
        r = measure(grown, english, messages, warmup, folder / f"model-{factor}x.npz")
        results.append(r)
        print(f"{r['examples']:>9} {factor:>2}x {r['vocabulary']:>6} {r['build_s']:>8.2f} "
              f"{r['median']:>10.1f} {r['p99']:>8.1f} {r['mean']:>8.1f} "
              f"{r['median_cached']:>11.1f} {r['p99_cached']:>11.1f}")
    base = results[0]
    for factor, r in zip((2, 4), results[1:], strict=True):
        ratio = {k: r[k] / base[k] for k in base}
        print(f"{factor}x examples ({ratio['examples']:.2f}x, vocabulary "
              f"{ratio['vocabulary']:.2f}x): median {ratio['median']:.2f}x, "
              f"p99 {ratio['p99']:.2f}x, mean {ratio['mean']:.2f}x, "
              f"cached median {ratio['median_cached']:.2f}x")
    verdict = "meets" if base["median"] <= 100 else "misses"
    print(f"goal: median <= 100 us at 1x: {base['median']:.1f} us ({verdict})")
    theirs = sklearn_median(catalog, messages[:2000])
    print(f"the intent model alone through scikit-learn (transform + predict_proba): "
          f"median {theirs:.1f} us per message")
    return 0


if __name__ == "__main__":
    sys.exit(main())
