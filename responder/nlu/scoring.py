"""Score a normalized message against every intent.

Features are word stems and stem bigrams, TF-IDF weighted, and a multinomial
logistic regression learns from the intents' examples how much each one is
worth: "orthotics" points hard at shoe_question while "calf", which every
intent uses, points nowhere. Whole-string fuzzy scores against single
examples were rejected: rapidfuzz's WRatio falls back to a partial scorer and
lets an unrelated short message that shares one word score 85-100
(fuzzywuzzy #251, #328), and nearest-example matching trails a linear model
by 25 points on CLINC150. Fuzziness lives at the word level instead, in the
normalizer's speller. Training is one L-BFGS fit at start-up (tens of ms);
scoring gathers a handful of weight rows, a few microseconds.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy import sparse
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

# Inverse regularisation strength, as scikit-learn's C: less smoothing than
# its default of 1.0 suits a few dozen hand-written examples per intent.
DEFAULT_C = 30.0


def _unit(vector: Mapping[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(v * v for v in vector.values()))
    return {k: v / norm for k, v in vector.items()} if norm else {}


def _fit(matrix: sparse.csr_matrix, labels: np.ndarray, classes: int, c: float) -> np.ndarray:
    """Fit multinomial logistic regression; return weights with the bias as last row."""
    rows, dims = matrix.shape
    target = np.zeros((rows, classes))
    target[np.arange(rows), labels] = 1.0

    def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        weights = theta[: dims * classes].reshape(dims, classes)
        logits = matrix @ weights + theta[dims * classes:]
        logits -= logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(logits).sum(axis=1, keepdims=True))
        probs = np.exp(logits - log_norm)
        loss = -c * float((target * (logits - log_norm)).sum()) + 0.5 * float((weights**2).sum())
        error = c * (probs - target)
        grad = np.concatenate([(matrix.T @ error + weights).ravel(), error.sum(axis=0)])
        return loss, grad

    start = np.zeros(dims * classes + classes)
    # The problem is small; OpenBLAS's worker threads only spin against the
    # web workers for the same two cores (measured: 0.5 s single-threaded,
    # 5-7 s with its default threads on a busy machine).
    with threadpool_limits(limits=1):
        fitted = minimize(loss_and_grad, start, jac=True, method="L-BFGS-B",
                          options={"maxiter": 1000})
    return np.vstack([fitted.x[: dims * classes].reshape(dims, classes),
                      fitted.x[dims * classes:]])


class IntentScorer:
    """Logistic regression over TF-IDF stem features."""

    def __init__(
        self,
        examples: Mapping[str, Sequence[str]],
        stem: Callable[[str], str],
        stopwords: frozenset[str] = frozenset(),
        c: float = DEFAULT_C,
    ) -> None:
        self._stem = stem
        self._stems: dict[str, str] = {}
        self._stopwords = stopwords
        self.intents = tuple(examples)
        docs = [(k, Counter(self.features(t))) for k, texts in examples.items() for t in texts]
        df: Counter[str] = Counter()
        for _, counts in docs:
            df.update(counts.keys())
        n = len(docs)
        self._idf = {f: math.log((1 + n) / (1 + d)) + 1.0 for f, d in df.items()}
        columns = {f: j for j, f in enumerate(sorted(self._idf))}
        matrix = sparse.lil_matrix((n, len(columns)))
        for row, (_, counts) in enumerate(docs):
            for feature, value in self._weigh(counts).items():
                matrix[row, columns[feature]] = value
        labels = np.array([self.intents.index(k) for k, _ in docs])
        fitted = _fit(matrix.tocsr(), labels, len(self.intents), c)
        self._columns = columns
        self._weights = fitted[:-1]
        self._bias = fitted[-1]

    def _stem_word(self, word: str) -> str:
        stem = self._stems.get(word)
        if stem is None:
            stem = self._stems[word] = self._stem(word)
        return stem

    def features(self, text: str) -> list[str]:
        """Return stems and stem bigrams; stopwords count only inside bigrams."""
        stems = [self._stem_word(w) for w in text.split()]
        unigrams = [s for s in stems if s not in self._stopwords]
        return unigrams + [f"{a}_{b}" for a, b in zip(stems, stems[1:], strict=False)]

    def _weigh(self, counts: Mapping[str, int]) -> dict[str, float]:
        return _unit({
            f: (1.0 + math.log(c)) * self._idf[f] for f, c in counts.items() if f in self._idf
        })

    def scores(self, text: str) -> dict[str, float]:
        """Return each intent's probability (summing to 1); empty if no feature is known."""
        idf, columns = self._idf, self._columns
        counts: dict[str, int] = {}
        for feature in self.features(text):
            if feature in idf:
                counts[feature] = counts.get(feature, 0) + 1
        if not counts:
            return {}
        values = np.array([(1.0 + math.log(c)) * idf[f] for f, c in counts.items()])
        # The model is linear, so the TF-IDF vector's unit length is one division.
        logits = values @ self._weights[[columns[f] for f in counts]]
        logits = logits / math.sqrt(values @ values) + self._bias
        exps = np.exp(logits - logits.max())
        return dict(zip(self.intents, (exps / exps.sum()).tolist(), strict=True))
