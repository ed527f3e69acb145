"""The fast prediction path gives what scikit-learn itself predicts from the same fit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from responder.dialogue.respond import Responder
from responder.nlu.textmodel import JointModel, Target, analyze, fit_models

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


def sklearn_model(texts: list[str], target: Target) -> tuple[TfidfVectorizer, object]:
    """Fit scikit-learn's own vectorizer and calibrated model the way fit_models does."""
    vectorizer = TfidfVectorizer(analyzer=analyze, sublinear_tf=True).fit(texts)
    features = vectorizer.transform([texts[i] for i in target.rows])
    if target.extra is not None:
        features = sparse.hstack([features, sparse.csr_matrix(target.extra)]).tocsr()
    model = CalibratedClassifierCV(
        LogisticRegression(C=10.0, max_iter=5000, solver="newton-cg",
                           class_weight="balanced" if target.balanced else None),
        method="temperature", cv=3, ensemble=False,
    ).fit(features, list(target.labels))
    return vectorizer, model


def predicted(fitted: tuple[TfidfVectorizer, object], probe: str,
              extra_row: np.ndarray | None = None) -> np.ndarray:
    """scikit-learn's predict_proba for one message (and its extra features)."""
    vectorizer, model = fitted
    features = vectorizer.transform([probe])
    if extra_row is not None:
        features = sparse.hstack([features, sparse.csr_matrix(extra_row)]).tocsr()
    return np.asarray(model.predict_proba(features)[0])  # type: ignore[attr-defined]


def test_joint_model_gives_each_models_sklearn_probabilities(
    sample: tuple[list[str], list[str]],
) -> None:
    """Four models stacked in one matrix, as the matcher applies them, each still
    equal to scikit-learn's predict_proba: a multiclass model, a binary one with
    extra features, a binary one on the words alone and a three-class one last."""
    texts, labels = sample
    flagged = ["urgent" if label == "medication" else "other" for label in labels]
    extra = np.array([[float("calf" in t), float(len(t) > 30)] for t in texts])
    groups = ["cramp" if "cramp" in label else "shoe" if "shoe" in label else "rest"
              for label in labels]
    everything = range(len(texts))
    targets = {
        "intent": Target(everything, labels),
        "red_flag": Target(everything, flagged, extra=extra, balanced=True),
        "text_red_flag": Target(everything, flagged, balanced=True),
        "language": Target(everything, groups, balanced=True),
    }
    vocabulary, models = fit_models(texts, targets, folds=3)
    joint = JointModel(models["intent"], models["red_flag"], models["text_red_flag"],
                       models["language"], idf=vocabulary.idf)
    theirs = {name: sklearn_model(texts, target) for name, target in targets.items()}
    for probe in PROBES:
        row = np.array([float("calf" in probe), float(len(probe) > 30)])
        verdict = joint.probabilities(*vocabulary.transform(probe), row)

        np.testing.assert_allclose(verdict.intent, predicted(theirs["intent"], probe), atol=1e-6)
        assert verdict.red_flag == pytest.approx(
            predicted(theirs["red_flag"], probe, row)[1], abs=1e-6)
        assert verdict.text_red_flag == pytest.approx(
            predicted(theirs["text_red_flag"], probe)[1], abs=1e-6)
        assert verdict.language is not None
        np.testing.assert_allclose(verdict.language, predicted(theirs["language"], probe),
                                   atol=1e-6)


def test_joint_model_without_the_optional_models(sample: tuple[list[str], list[str]]) -> None:
    texts, labels = sample
    flagged = ["urgent" if label == "medication" else "other" for label in labels]
    extra = np.zeros((len(texts), 1))
    vocabulary, models = fit_models(texts, {
        "intent": Target(range(len(texts)), labels),
        "red_flag": Target(range(len(texts)), flagged, extra=extra)}, folds=3)
    joint = JointModel(models["intent"], models["red_flag"], idf=vocabulary.idf)
    columns, weights = vocabulary.transform("can i take advil")
    verdict = joint.probabilities(columns, weights, np.zeros(1))
    np.testing.assert_allclose(verdict.intent, models["intent"].probabilities(columns, weights))
    assert verdict.red_flag == pytest.approx(
        models["red_flag"].probabilities(columns, weights, np.zeros(1))[1])
    assert verdict.text_red_flag == 0.0 and verdict.language is None


def test_analyzer_has_word_and_character_grams() -> None:
    grams = analyze("calf cramp")
    assert {"w calf", "w cramp", "w calf cramp", " c", "cra", "ramp ", " calf"} <= set(grams)
    assert " calf " not in grams  # six characters: longer than 5-grams
