"""The model file: the same answers after a round trip, refused once the intents change."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from responder.dialogue.respond import Responder
from responder.nlu.catalog import load_catalog
from responder.nlu.matcher import Matcher
from responder.nlu.model import StaleModelError, catalog_fingerprint, load_model, save_model

ROOT = Path(__file__).resolve().parents[2]


def test_round_trip_gives_the_same_model(responder: Responder, tmp_path: Path) -> None:
    model = responder.matcher.model
    save_model(model, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz", model.fingerprint)
    assert loaded.vocabulary.index == model.vocabulary.index
    for name in ("intent", "red_flag"):
        ours, theirs = getattr(loaded, name), getattr(model, name)
        assert ours.classes == theirs.classes and ours.beta == theirs.beta
        np.testing.assert_array_equal(ours.coef, theirs.coef)


def test_a_file_from_other_intents_refuses_to_load(responder: Responder, tmp_path: Path) -> None:
    folder = tmp_path / "intents"
    shutil.copytree(ROOT / "intents", folder, ignore=shutil.ignore_patterns(".model*"))
    save_model(responder.matcher.model, tmp_path / "m.npz")
    before = catalog_fingerprint(load_catalog(folder))
    path = folder / "thanks.yaml"
    path.write_text(path.read_text().replace("examples:\n", 'examples:\n  - "cheers mate"\n', 1))
    assert catalog_fingerprint(load_catalog(folder)) != before
    with pytest.raises(StaleModelError):
        load_model(tmp_path / "m.npz", catalog_fingerprint(load_catalog(folder)))


def test_a_reply_edit_needs_no_new_fit(tmp_path: Path) -> None:
    folder = tmp_path / "intents"
    shutil.copytree(ROOT / "intents", folder, ignore=shutil.ignore_patterns(".model*"))
    before = catalog_fingerprint(load_catalog(folder))
    path = folder / "thanks.yaml"
    path.write_text(path.read_text().replace("replies:", "# reviewed again\nreplies:", 1))
    assert catalog_fingerprint(load_catalog(folder)) == before


def test_missing_or_broken_file_refuses_to_load(tmp_path: Path) -> None:
    with pytest.raises(StaleModelError):
        load_model(tmp_path / "absent.npz", "x")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(StaleModelError):
        load_model(tmp_path / "broken.npz", "x")


def test_a_stale_file_is_refitted_and_replaced(responder: Responder, tmp_path: Path) -> None:
    folder = tmp_path / "intents"
    shutil.copytree(ROOT / "intents", folder, ignore=shutil.ignore_patterns(".model*"))
    stale = tmp_path / "m.npz"
    save_model(responder.matcher.model, stale)  # fitted on the unchanged folder
    path = folder / "thanks.yaml"
    path.write_text(path.read_text().replace("examples:\n", 'examples:\n  - "cheers mate"\n', 1))
    matcher = Matcher(load_catalog(folder), model_file=stale)
    fresh = catalog_fingerprint(load_catalog(folder))
    assert matcher.model.fingerprint == fresh
    assert load_model(stale, fresh).fingerprint == fresh
    assert matcher.match("cheers mate").intent == "thanks"


def test_the_joint_product_equals_each_model(responder: Responder) -> None:
    model, reader = responder.matcher.model, responder.matcher.reader
    for text in ("calf cramp rn", "my calf is swollen and hot", "no swelling, just tight", ""):
        normalized, _ = reader.read(text)
        _, extra = reader.featurize(text)
        columns, weights = model.vocabulary.transform(normalized)
        verdict = model.joint.probabilities(columns, weights, extra)
        np.testing.assert_allclose(verdict.intent, model.intent.probabilities(columns, weights))
        assert verdict.red_flag == pytest.approx(
            model.red_flag.probabilities(columns, weights, extra)[1])
        assert model.text_red_flag is not None and model.language is not None
        assert verdict.text_red_flag == pytest.approx(
            model.text_red_flag.probabilities(columns, weights)[1])
        assert verdict.language is not None
        np.testing.assert_allclose(verdict.language, model.language.probabilities(columns, weights))
        # What the matcher runs: the idf and the norm applied to the logits.
        scored = model.joint.score(*model.vocabulary.counts(normalized), extra)
        np.testing.assert_allclose(scored.intent, verdict.intent)
        assert scored.red_flag == pytest.approx(verdict.red_flag)
        assert scored.text_red_flag == pytest.approx(verdict.text_red_flag)
        assert scored.language is not None
        np.testing.assert_allclose(scored.language, verdict.language)


def test_the_file_keeps_the_spellers_words_for_the_next_start(responder: Responder,
                                                               tmp_path: Path) -> None:
    """Reading two dictionaries costs seconds per start-up; the file carries the words."""
    from responder.nlu.matcher import english_words
    from responder.nlu.model import stored_words

    path = tmp_path / "model.npz"
    words = english_words()
    save_model(responder.matcher.model, path, words)
    assert stored_words(path) == words and {"calf", "pantorrilla"} <= words
    assert stored_words(tmp_path / "missing.npz") is None
    save_model(responder.matcher.model, path)  # a file written without them
    assert stored_words(path) is None
