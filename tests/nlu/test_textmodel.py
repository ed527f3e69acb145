"""The fast prediction path gives what scikit-learn itself predicts from the same fit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from responder.dialogue.respond import Responder
from responder.nlu.textmodel import Target, analyze, fit_models

PROBES = ["calf cramping rn", "tite calves aftr run", "new shoes hurt my calfs",
          "xyzzy", "", "can i take advil", "my car is cramping"]


@pytest.fixture(scope="module")
def sample(responder: Responder) -> tuple[list[str], list[str]]:
    """A few intents' real examples, small enough to fit in a second."""
    wanted = ("cramp_now", "post_run_tightness", "shoe_question", "medication")
    intents = [responder.catalog.intents[i] for i in wanted]
    return ([e.lower() for i in intents for e in i.examples[:40]],
            [i.id for i in intents for _ in i.examples[:40]])


def test_multiclass_probabilities_equal_sklearn(sample: tuple[list[str], list[str]]) -> None:
    texts, labels = sample
    vocabulary, models = fit_models(texts, {"m": Target(range(len(texts)), labels)}, folds=3)
    vectorizer = TfidfVectorizer(analyzer=analyze, sublinear_tf=True).fit(texts)
    model = CalibratedClassifierCV(
        LogisticRegression(C=10.0, max_iter=5000, solver="newton-cg"),
        method="temperature", cv=3, ensemble=False,
    ).fit(vectorizer.transform(texts), labels)
    assert models["m"].classes == tuple(model.classes_)
    for probe in PROBES:
        ours = models["m"].probabilities(*vocabulary.transform(probe))
        theirs = model.predict_proba(vectorizer.transform([probe]))[0]
        np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_binary_model_with_extra_features_equals_sklearn(
    sample: tuple[list[str], list[str]],
) -> None:
    texts, labels = sample
    binary = ["cramp_now" if label == "cramp_now" else "other" for label in labels]
    extra = np.array([[float("calf" in t), float(len(t) > 30)] for t in texts])
    target = Target(range(len(texts)), binary, extra=extra, balanced=True)
    vocabulary, models = fit_models(texts, {"b": target}, folds=3)
    vectorizer = TfidfVectorizer(analyzer=analyze, sublinear_tf=True).fit(texts)
    features = sparse.hstack([vectorizer.transform(texts), sparse.csr_matrix(extra)]).tocsr()
    model = CalibratedClassifierCV(
        LogisticRegression(C=10.0, max_iter=5000, solver="newton-cg", class_weight="balanced"),
        method="temperature", cv=3, ensemble=False,
    ).fit(features, binary)
    for probe in PROBES:
        row = np.array([float("calf" in probe), float(len(probe) > 30)])
        ours = models["b"].probabilities(*vocabulary.transform(probe), row)
        probe_features = sparse.hstack([vectorizer.transform([probe]), sparse.csr_matrix(row)])
        theirs = model.predict_proba(probe_features.tocsr())[0]
        np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_analyzer_has_word_and_character_grams() -> None:
    grams = analyze("calf cramp")
    assert {"w calf", "w cramp", "w calf cramp", " c", "cra", "ramp ", " calf"} <= set(grams)
    assert " calf " not in grams  # six characters: longer than 5-grams
