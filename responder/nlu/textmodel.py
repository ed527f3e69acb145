"""Linear text models: fitted by scikit-learn, applied with a few array look-ups.

Features are TF-IDF over word 1-2 grams and char_wb 2-5 grams (char n-grams
carry typos and speech slips: "cramo" shares "cra", "ram" with "cramp"),
sublinear tf, one l2 norm. Probabilities are calibrated by temperature
scaling (Guo et al. 2017), fitted on cross-validated logits by
scikit-learn's CalibratedClassifierCV(method="temperature", ensemble=False).

Prediction does not import scikit-learn: a message needs a dictionary
look-up per word n-gram (a word's character n-grams are looked up once and
kept) and one small matrix product, where scikit-learn's own transform +
predict_proba costs 7.6x as much per message (bench/matcher.py) and its
imports would sit in every worker. tests/nlu/test_textmodel.py checks that
both give the same probabilities.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"\w+")
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


class Vocabulary:
    """The fitted TF-IDF: n-gram -> column, and each column's idf.

    transform() gives what scikit-learn's TfidfVectorizer(analyzer=analyze,
    sublinear_tf=True) gives for one text. A word's character n-grams are
    looked up once and kept (bounded), since most words recur.
    """

    def __init__(self, index: dict[str, int], idf: np.ndarray) -> None:
        self.index = index
        self.idf = idf
        self._word_columns: dict[str, list[int]] = {}

    def _columns_of_word(self, word: str) -> list[int]:
        cached = self._word_columns.get(word)
        if cached is None:
            get = self.index.get
            cached = [c for c in map(get, char_grams(word)) if c is not None]
            if len(self._word_columns) >= _CACHE_LIMIT:
                self._word_columns.clear()
            self._word_columns[word] = cached
        return cached

    def transform(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Return (columns, l2-normalized sublinear tf-idf weights) of one text."""
        words = _WORD.findall(text)
        get = self.index.get
        found = [c for c in map(get, word_grams(words)) if c is not None]
        for word in words:
            found += self._columns_of_word(word)
        if not found:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        counts = Counter(found)  # counted in C; cheaper than np.unique for ~200 ints
        size = len(counts)
        columns = np.fromiter(counts, dtype=np.intp, count=size)
        tf = np.fromiter(counts.values(), dtype=np.float64, count=size)
        weights = (1.0 + np.log(tf)) * self.idf[columns]
        return columns, weights / math.sqrt(float(weights @ weights))


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
        if len(self.classes) == 2:  # sklearn's binary logit x is the pair (-x, x)
            positive = 1.0 / (1.0 + math.exp(-2.0 * self.beta * float(logits[0])))
            return np.array([1.0 - positive, positive])
        scaled = self.beta * logits
        scaled = np.exp(scaled - scaled.max())
        return scaled / scaled.sum()


class JointModel:
    """A multiclass model and a binary one over the same vocabulary, applied together.

    Their text weights sit side by side in one matrix, so a message costs one
    gather and one product instead of two (bench/matcher.py); the results
    equal each model's own probabilities().
    """

    def __init__(self, multiclass: LinearModel, binary: LinearModel) -> None:
        text_rows = multiclass.coef.shape[0]
        self.multiclass, self.binary = multiclass, binary
        self._stacked = np.ascontiguousarray(
            np.hstack([multiclass.coef, binary.coef[:text_rows]]))
        self._intercept = np.append(multiclass.intercept, binary.intercept)
        self._extra = binary.coef[text_rows:, 0]

    def probabilities(
        self, columns: np.ndarray, weights: np.ndarray, extra: np.ndarray
    ) -> tuple[np.ndarray, float]:
        """Return the multiclass probabilities and the binary model's positive probability."""
        logits = weights @ self._stacked[columns] + self._intercept
        binary = float(logits[-1]) + float(extra @ self._extra)
        positive = 1.0 / (1.0 + math.exp(-2.0 * self.binary.beta * binary))
        scaled = self.multiclass.beta * logits[:-1]
        scaled = np.exp(scaled - scaled.max())
        return scaled / scaled.sum(), positive


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
    vocabulary = Vocabulary(
        {str(k): int(v) for k, v in vectorizer.vocabulary_.items()},
        np.asarray(vectorizer.idf_, dtype=np.float64),
    )
    return vocabulary, models


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
