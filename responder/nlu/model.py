"""The triage model: fitted from intents/, kept as one file, refused when stale.

    fit_triage_model(catalog, featurize) -> TriageModel   (needs scikit-learn)
    save_model(model, path); load_model(path, fingerprint) -> TriageModel
    catalog_fingerprint(catalog) -> str

Fitting takes seconds (two calibrated logistic regressions over ~3,500
examples, with cross-validation), too slow for every worker's start-up, so
`calfline train` stores the fitted arrays in a .npz file with a fingerprint
of what it learnt from. A file whose fingerprint differs from the intents'
raises StaleModelError: a clinic that edited an example never runs on the
model from before the edit, and a new release never runs on features an
older one computed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from responder.errors import CalfLineError
from responder.nlu.catalog import Catalog
from responder.nlu.textmodel import JointModel, LinearModel, Target, Vocabulary, fit_models

# Bump when the features or the file layout change: old files become stale.
MODEL_FORMAT = 2
# Exact command words, never learned (the contract: STOP is a word, not a guess).
COMMAND_ONLY = frozenset({"opt_out", "opt_in"})
RED_FLAG = "red_flag"
TEXT_RED_FLAG = "text_red_flag"
LANGUAGE = "language"

Featurize = Callable[[str], tuple[str, np.ndarray]]  # text -> (model text, sign features)


class StaleModelError(CalfLineError):
    """Raise when a model file is missing, unreadable or fitted on other intents."""


@dataclass(frozen=True)
class TriageModel:
    """The vocabulary, the intent, red-flag and language models, and where they came from.

    `language` is None for a catalog in one language; `text_red_flag` reads the
    words only, without the sign rules' verdict.
    """

    vocabulary: Vocabulary
    intent: LinearModel
    red_flag: LinearModel
    fingerprint: str
    language: LinearModel | None = None
    text_red_flag: LinearModel | None = None

    @cached_property
    def joint(self) -> JointModel:
        """All the models in one product, for matching."""
        return JointModel(self.intent, self.red_flag, self.text_red_flag, self.language,
                          idf=self.vocabulary.idf)


# The code that turns a message into features: a change to it makes old files stale too.
FEATURE_CODE = ("normalize.py", "prefilter.py", "redflags.py", "textmodel.py", "matcher.py")


def catalog_fingerprint(catalog: Catalog) -> str:
    """Hash what the model learns from (examples, lexicon, sign rules) and the feature code.

    Reply templates and comments are left out: editing a reply needs no new fit.
    """
    digest = hashlib.sha256(f"calfline-model-{MODEL_FORMAT}".encode())
    here = Path(__file__).parent
    for name in FEATURE_CODE:
        digest.update(name.encode() + b"\0" + (here / name).read_bytes() + b"\0")
    learned = {
        "examples": catalog.examples(),
        "commands": sorted(catalog.command_languages().items()),
        "lexicon": catalog.lexicon, "red_flags": catalog.red_flags,
    }
    digest.update(json.dumps(learned, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def training_rows(catalog: Catalog) -> list[tuple[str, str, str]]:
    """Return (example, intent, language) for every learned intent, in every language."""
    return [row for row in catalog.examples() if row[1] not in COMMAND_ONLY]


def fit_triage_model(catalog: Catalog, featurize: Featurize, folds: int = 5) -> TriageModel:
    """Fit the intent model (no red_flag class), the red-flag models (with and without
    the sign features) and, with more than one language, the language model."""
    rows = training_rows(catalog)
    features = [featurize(text) for text, _, _ in rows]
    labels = [label for _, label, _ in rows]
    texts = [text for text, _ in features]
    calm = [i for i, label in enumerate(labels) if label != RED_FLAG]
    targets = {
        "intent": Target(calm, [labels[i] for i in calm]),
        RED_FLAG: Target(
            range(len(rows)),
            [RED_FLAG if label == RED_FLAG else "other" for label in labels],
            extra=np.vstack([signs for _, signs in features]),
            balanced=True,
        ),
        # The words alone: a second opinion for signs the rules have no pattern for.
        TEXT_RED_FLAG: Target(range(len(rows)),
                              [RED_FLAG if label == RED_FLAG else "other" for label in labels],
                              balanced=True),
    }
    if len(catalog.languages) > 1:
        targets[LANGUAGE] = Target(range(len(rows)), [language for _, _, language in rows],
                                   balanced=True)
    # An n-gram seen in one example only is dropped (min_df=2): half the vocabulary,
    # the same accuracy on tests/data/dev*.tsv, and each message looks up less.
    vocabulary, models = fit_models(texts, targets, folds=folds, min_df=2)
    return TriageModel(vocabulary, models["intent"], models[RED_FLAG],
                       catalog_fingerprint(catalog), models.get(LANGUAGE),
                       models[TEXT_RED_FLAG])


def _model_arrays(prefix: str, model: LinearModel) -> dict[str, np.ndarray]:
    return {
        f"{prefix}_classes": np.array(model.classes),
        f"{prefix}_coef": model.coef,
        f"{prefix}_intercept": model.intercept,
        f"{prefix}_beta": np.array(model.beta),
    }


def stored_words(path: Path | str) -> frozenset[str] | None:
    """The speller's common words kept in a model file, stale or not; None without them.

    Reading the English and Spanish dictionaries takes seconds at every start-up;
    the words do not depend on the intents, so any model file may carry them.
    """
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return frozenset(str(w) for w in arrays["known_words"])
    except (OSError, KeyError, ValueError):
        return None


def save_model(model: TriageModel, path: Path | str, words: frozenset[str] = frozenset()) -> None:
    """Write the model (and the speller's common words) atomically: a reader sees the old
    file or the new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grams = sorted(model.vocabulary.index, key=model.vocabulary.index.__getitem__)
    arrays = {
        "format": np.array(MODEL_FORMAT), "fingerprint": np.array(model.fingerprint),
        "grams": np.array(grams, dtype=str), "idf": model.vocabulary.idf,
        **_model_arrays("intent", model.intent), **_model_arrays("red_flag", model.red_flag),
        **(_model_arrays(LANGUAGE, model.language) if model.language else {}),
        **(_model_arrays(TEXT_RED_FLAG, model.text_red_flag) if model.text_red_flag else {}),
        **({"known_words": np.array(sorted(words), dtype=str)} if words else {}),
    }
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez_compressed(out, allow_pickle=False, **arrays)
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide it from a service user
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _read_model(arrays: np.lib.npyio.NpzFile, prefix: str) -> LinearModel:
    classes: Sequence[str] = [str(c) for c in arrays[f"{prefix}_classes"]]
    return LinearModel(tuple(classes), arrays[f"{prefix}_coef"],
                       arrays[f"{prefix}_intercept"], float(arrays[f"{prefix}_beta"]))


def load_model(path: Path | str, fingerprint: str) -> TriageModel:
    """Read a model file; raise StaleModelError unless it was fitted on these intents."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            if int(arrays["format"]) != MODEL_FORMAT or str(arrays["fingerprint"]) != fingerprint:
                raise StaleModelError(
                    f"{path}: fitted on other intents or an older format; run `calfline train`"
                )
            grams = [str(g) for g in arrays["grams"]]
            vocabulary = Vocabulary({g: i for i, g in enumerate(grams)}, arrays["idf"])
            optional = {name: _read_model(arrays, name) if f"{name}_coef" in arrays else None
                        for name in (LANGUAGE, TEXT_RED_FLAG)}
            return TriageModel(vocabulary, _read_model(arrays, "intent"),
                               _read_model(arrays, RED_FLAG), fingerprint,
                               optional[LANGUAGE], optional[TEXT_RED_FLAG])
    except (OSError, KeyError, ValueError) as exc:
        raise StaleModelError(f"{path}: cannot read the model file ({exc})") from exc
