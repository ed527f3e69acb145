"""Linear text models: fitted by scikit-learn, applied with a few array look-ups.

Features are TF-IDF over word 1-2 grams and char_wb 2-5 grams (char n-grams
carry typos and speech slips: "cramo" shares "cra", "ram" with "cramp"),
sublinear tf, one l2 norm. Probabilities are calibrated by temperature
scaling (Guo et al. 2017), fitted on cross-validated logits by
scikit-learn's CalibratedClassifierCV(method="temperature", ensemble=False).

Prediction does not import scikit-learn: a message needs a dictionary
look-up per word bigram (a word's unigram and character n-grams are looked
up once and kept) and one small matrix product, where scikit-learn's own transform +
predict_proba costs 7.6x as much per message (bench/matcher.py) and its
imports would sit in every worker. tests/nlu/test_textmodel.py checks that
both give the same probabilities.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter

import numpy as np

_WORD = re.compile(r"\w+")
_NONE: dict[str, int] = {}  # the followers of a word that starts no known bigram
_CACHE_LIMIT = 50_000


def word_grams(words: Sequence[str]) -> list[str]:
    """Return the word unigrams and bigrams, marked apart from character n-grams."""
    grams = [f"w {w}" for w in words]
    grams += [f"w {a} {b}" for a, b in zip(words, words[1:], strict=False)]
    return grams


def char_grams(word: str) -> list[str]:
    """Return the char_wb 2-5 grams of one word, padded with a space on each side."""
    padded = f" {word} "
    size = len(padded)
    return [padded[i:i + n] for n in range(2, min(5, size) + 1) for i in range(size - n + 1)]


def analyze(text: str) -> list[str]:
    """Return the word 1-2 grams and char_wb 2-5 grams of a normalized text."""
    words = _WORD.findall(text)
    grams = word_grams(words)
    for word in words:
        grams += char_grams(word)
    return grams


_WordEntry = tuple[np.ndarray, dict[str, int]]
_COLUMNS, _FOLLOWERS = itemgetter(0), itemgetter(1)


class _WordEntries(dict[str, _WordEntry]):
    """word -> the columns of its unigram and char n-grams (the known ones), and
    the words that follow it in a known bigram (second word -> column).

    They depend on the word alone, and most words recur, so each is looked up
    once and kept (bounded). A dict with __missing__ serves the hits from C:
    a message's words cost one map() instead of a Python call each.
    """

    def __init__(self, index: Mapping[str, int], pairs: Mapping[str, dict[str, int]]) -> None:
        super().__init__()
        self._index, self._pairs = index, pairs

    def __missing__(self, word: str) -> _WordEntry:
        get = self._index.get
        grams = map(get, [f"w {word}", *char_grams(word)])
        columns = np.array([c for c in grams if c is not None], dtype=np.intp)
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        entry = self[word] = (columns, self._pairs.get(word, _NONE))
        return entry


def _bigram_index(index: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """Map first word -> second word -> column for the word bigrams ("w a b").

    Looking a pair up in two steps builds no "w a b" string per pair. Words are
    \\w+ runs and char n-grams have spaces only at their ends, so a gram of
    three space-separated non-empty parts led by "w" is a word bigram.
    """
    pairs: dict[str, dict[str, int]] = {}
    for gram, column in index.items():
        parts = gram.split(" ")
        if len(parts) == 3 and parts[0] == "w" and parts[1] and parts[2]:
            pairs.setdefault(parts[1], {})[parts[2]] = column
    return pairs


def _words_of(text: str) -> list[str]:
    """Return the \\w+ runs of a text; str.split when that gives the same (ASCII
    letters and digits between single spaces, as the normalizer writes them)."""
    words = text.split()
    if text.isascii() and "".join(words).isalnum():
        return words
    return _WORD.findall(text)


class Vocabulary:
    """The fitted TF-IDF: n-gram -> column, and each column's idf.

    transform() gives what scikit-learn's TfidfVectorizer(analyzer=analyze,
    sublinear_tf=True) gives for one text. A word's unigram and character
    n-gram columns are looked up once and kept (bounded), since most words recur.
    """

    def __init__(self, index: dict[str, int], idf: np.ndarray) -> None:
        self.index = index
        self.idf = idf
        self._words = _WordEntries(index, _bigram_index(index))

    def transform(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Return (columns, l2-normalized sublinear tf-idf weights) of one text.

        Columns come out sorted.
        """
        columns, sublinear = self.counts(text)
        if not columns.size:
            return columns, np.zeros(0)
        weights = sublinear * self.idf.take(columns)
        return columns, weights / math.sqrt(float(weights @ weights))

    def counts(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Return (sorted columns, 1 + ln tf) of one text: transform() before the
        idf and the l2 norm, which JointModel.score folds into its product."""
        words = _words_of(text)
        entries = list(map(self._words.__getitem__, words))
        parts = list(map(_COLUMNS, entries))
        # Each word's followers, then the next word among them: map() calls in C.
        after = map(_FOLLOWERS, entries[:-1])
        bigrams = [c for c in map(dict.get, after, words[1:]) if c is not None]
        if bigrams:
            parts.append(np.array(bigrams, dtype=np.intp))
        found = np.concatenate(parts) if parts else np.zeros(0, dtype=np.intp)
        if not found.size:
            return found, np.zeros(0)
        columns, tf = _counted(found)
        return columns, _sublinear(tf, found.size)


# 1 + ln(tf) for every count up to a long message's n-grams (an SMS is at most
# 1,600 characters, Twilio's limit, about 4 n-grams per character): a look-up
# instead of a log, and no max() to check, as no count exceeds the n-grams found.
_SUBLINEAR = np.concatenate([[0.0], 1.0 + np.log(np.arange(1, 8192, dtype=np.float64))])


def _counted(found: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the distinct values of `found` (sorted in place) and their counts.

    What np.unique(return_counts=True) gives, in a third of its time on the
    hundred-odd columns of a message: np.unique's own checks and its extra
    arrays cost more than the sort.
    """
    found.sort()
    edges = np.empty(found.size + 1, dtype=bool)
    edges[0] = edges[-1] = True
    np.not_equal(found[1:], found[:-1], out=edges[1:-1])
    starts = edges.nonzero()[0]
    return found[starts[:-1]], starts[1:] - starts[:-1]


def _sublinear(tf: np.ndarray, found: int) -> np.ndarray:
    """Return 1 + ln(tf) for counts out of `found` n-grams, from the table when it
    covers them."""
    if found < len(_SUBLINEAR):
        return _SUBLINEAR.take(tf)
    return 1.0 + np.log(tf)


@dataclass(frozen=True)
class LinearModel:
    """One fitted, temperature-calibrated logistic regression over the vocabulary.

    `coef` has a row per feature (text columns first, then any extra dense
    features) and a column per class; binary models have one column.
    """

    classes: tuple[str, ...]
    coef: np.ndarray
    intercept: np.ndarray
    beta: float

    def probabilities(
        self, columns: np.ndarray, weights: np.ndarray, extra: np.ndarray | None = None
    ) -> np.ndarray:
        """Return calibrated class probabilities for one featurized message."""
        logits = weights @ self.coef[columns] + self.intercept
        if extra is not None and extra.size:
            text_rows = self.coef.shape[0] - extra.size
            logits = logits + extra @ self.coef[text_rows:]
        return self.calibrated(logits)

    def calibrated(self, logits: np.ndarray) -> np.ndarray:
        """Turn this model's logits into temperature-scaled class probabilities."""
        if len(self.classes) == 2:
            positive = self.positive(float(logits[0]))
            return np.array([1.0 - positive, positive])
        scaled = self.beta * logits
        scaled = np.exp(scaled - scaled.max())
        return scaled / scaled.sum()

    def positive(self, logit: float) -> float:
        """A binary model's probability of its second class, from its one logit."""
        return 1.0 / (1.0 + math.exp(-2.0 * self.beta * logit))  # sklearn: the pair (-x, x)


def softmax(logits: Sequence[float], beta: float) -> tuple[float, ...]:
    """Temperature-scaled softmax in plain Python.

    For the handful of classes a message is scored on, each numpy call costs
    more than the arithmetic; this gives LinearModel.calibrated's values.
    """
    scaled = [beta * logit for logit in logits]
    top = max(scaled)
    exps = [math.exp(value - top) for value in scaled]
    total = sum(exps)
    return tuple([value / total for value in exps])


@dataclass(frozen=True)
class JointVerdict:
    """What the models of a JointModel say about one message."""

    intent: tuple[float, ...]  # the multiclass model's probabilities, in its class order
    red_flag: float  # the red-flag model's positive probability (words and sign features)
    text_red_flag: float  # the words-only red-flag model's (0.0 without one)
    language: tuple[float, ...] | None  # the language model's probabilities (None without one)


class JointModel:
    """The intent, red-flag, words-only red-flag and language models, applied together.

    All four read the same TF-IDF columns, so their text weights sit side by side
    in one matrix: a message costs one gather and one product instead of four
    (bench/matcher.py). Only the red-flag model has extra (sign) features, added
    to its own logit. The results equal each model's own probabilities().
    """

    def __init__(self, intent: LinearModel, red_flag: LinearModel,
                 text_red_flag: LinearModel | None = None,
                 language: LinearModel | None = None, *, idf: np.ndarray) -> None:
        text_rows = intent.coef.shape[0]
        if any(m is not None and len(m.classes) != 2 for m in (red_flag, text_red_flag)):
            raise ValueError("the red-flag models must be binary")
        self.intent, self.red_flag = intent, red_flag
        self.text_red_flag, self.language = text_red_flag, language
        models = [m for m in (intent, red_flag, text_red_flag, language) if m is not None]
        widths = [m.coef.shape[1] for m in models]
        ends = np.cumsum(widths).tolist()
        stacked = np.hstack([m.coef[:text_rows] for m in models])
        self._intercept = np.concatenate([m.intercept for m in models])
        self._extra = red_flag.coef[text_rows:, 0]
        # Where each model's logits sit in the product's row.
        self._intent = slice(0, ends[0])
        self._red_flag = ends[0]
        self._text_red_flag = ends[1] if text_red_flag is not None else None
        self._language = slice(ends[-2], ends[-1]) if language is not None else None
        # The weights times each column's idf, and the idf itself last: one gather
        # brings score() all a message's columns need (probabilities() divides the
        # idf back out), and the model holds one copy of its weights, not two.
        self._weighted = np.ascontiguousarray(np.hstack([stacked * idf[:, None], idf[:, None]]))

    def probabilities(
        self, columns: np.ndarray, weights: np.ndarray, extra: np.ndarray | None = None
    ) -> JointVerdict:
        """Return every model's probabilities for one featurized message.

        `extra` None stands for sign features that are all zero (no sign found,
        most messages), which add nothing to the red-flag logit.
        """
        # One product in numpy, then plain floats: the logits are a dozen numbers.
        rows = self._weighted.take(columns, axis=0)
        logits = ((weights / rows[:, -1]) @ rows[:, :-1] + self._intercept).tolist()
        return self._verdict(logits, extra)

    def score(
        self, columns: np.ndarray, sublinear: np.ndarray, extra: np.ndarray | None = None
    ) -> JointVerdict:
        """Return probabilities() from Vocabulary.counts(), without transform()'s arrays.

        The idf and the l2 norm are applied to the dozen logits instead of to each
        column: (s * idf / |s * idf|) @ W equals (s @ (idf * W)) / |s * idf| up to
        float rounding, and a message costs one gather and a few array calls less.
        """
        if not columns.size:
            return self._verdict(self._intercept.tolist(), extra)
        rows = self._weighted.take(columns, axis=0)
        product = sublinear @ rows
        weights = sublinear * rows[:, -1]
        norm = math.sqrt(float(weights @ weights))
        return self._verdict((product[:-1] / norm + self._intercept).tolist(), extra)

    def _verdict(self, logits: list[float], extra: np.ndarray | None) -> JointVerdict:
        """Turn the text logits (and the sign features) into every model's probabilities."""
        signs = 0.0 if extra is None else float(extra @ self._extra)
        urgency = self.red_flag.positive(logits[self._red_flag] + signs)
        text_urgency = 0.0
        if self.text_red_flag is not None and self._text_red_flag is not None:
            text_urgency = self.text_red_flag.positive(logits[self._text_red_flag])
        language = None
        if self.language is not None and self._language is not None:
            language = _calibrated(self.language, logits[self._language])
        return JointVerdict(_calibrated(self.intent, logits[self._intent]), urgency,
                            text_urgency, language)


def _calibrated(model: LinearModel, logits: list[float]) -> tuple[float, ...]:
    """LinearModel.calibrated on plain floats."""
    if len(model.classes) == 2:
        positive = model.positive(logits[0])
        return (1.0 - positive, positive)
    return softmax(logits, model.beta)


@dataclass(frozen=True)
class Target:
    """What one model learns: labels for some of the texts, and optional dense features."""

    rows: Sequence[int]
    labels: Sequence[str]
    extra: np.ndarray | None = None  # one row per entry of `rows`
    balanced: bool = False  # weigh classes equally (a rare class such as red_flag)


def fit_models(
    texts: Sequence[str],
    targets: Mapping[str, Target],
    c: float = 10.0,
    folds: int = 5,
    min_df: int = 1,
) -> tuple[Vocabulary, dict[str, LinearModel]]:
    """Fit one TF-IDF vocabulary on all texts and a calibrated model per target."""
    from scipy import sparse
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    vectorizer = TfidfVectorizer(analyzer=analyze, sublinear_tf=True, dtype=np.float64,
                                 min_df=min_df)
    with threadpool_limits(1):  # OpenBLAS threads spin on a busy 2-core machine
        matrix = vectorizer.fit_transform(texts).tocsr()
        models = {}
        for name, target in targets.items():
            features = matrix[list(target.rows)]
            if target.extra is not None:
                features = sparse.hstack([features, sparse.csr_matrix(target.extra)]).tocsr()
            base = LogisticRegression(C=c, max_iter=5000, solver="newton-cg",
                                      class_weight="balanced" if target.balanced else None)
            calibrated = CalibratedClassifierCV(base, method="temperature", cv=folds,
                                                ensemble=False)
            calibrated.fit(features, list(target.labels))
            models[name] = _arrays(calibrated)
    idf = np.asarray(vectorizer.idf_, dtype=np.float64)
    # Number the columns by document frequency (idf falls as it rises), so the
    # n-grams most messages have sit together in memory and stay in the CPU's
    # cache between messages. Any numbering gives the same model.
    order = np.argsort(idf, kind="stable")
    column = np.empty_like(order)
    column[order] = np.arange(order.size)
    vocabulary = Vocabulary(
        {str(k): int(column[v]) for k, v in vectorizer.vocabulary_.items()}, idf[order])
    return vocabulary, {name: _renumbered(model, order) for name, model in models.items()}


def _renumbered(model: LinearModel, order: np.ndarray) -> LinearModel:
    """Return the model with its text rows in the vocabulary's new column order."""
    text = order.size
    coef = np.vstack([model.coef[:text][order], model.coef[text:]])
    return dataclasses.replace(model, coef=np.ascontiguousarray(coef))


def _arrays(calibrated: object) -> LinearModel:
    """Read the fitted weights and temperature out of a CalibratedClassifierCV."""
    inner = calibrated.calibrated_classifiers_[0]  # type: ignore[attr-defined]
    estimator = inner.estimator
    # The calibrator fits the estimator on label-encoded targets: map back.
    names = calibrated.classes_  # type: ignore[attr-defined]
    classes = tuple(str(names[int(c)]) for c in estimator.classes_)
    return LinearModel(
        classes=classes,
        coef=np.ascontiguousarray(estimator.coef_.T, dtype=np.float64),
        intercept=np.asarray(estimator.intercept_, dtype=np.float64),
        beta=float(inner.calibrators[0].beta_),
    )
