"""Training, storing and loading the symptom checker's models.

Per species, two scikit-learn models learn from synthetic cases generated from the knowledge base: one for the
condition and one for the urgency level. Both are multinomial logistic regressions on the encoded symptoms, age and
sex. The cases are generated with symptoms independent given the condition, which is exactly the structure a
log-linear model captures; it gives well-calibrated probabilities (it is fitted on log-loss), an artefact of a few
hundred kilobytes and sub-millisecond predictions. Held-out top-1/top-3 accuracy and urgency recall per level are
measured on cases the model never saw.

An artefact is a folder `<MODEL_DIR>/<version>/` with `models.joblib` and `meta.json` (name, version, training data
hashes, metrics, creation time). `<MODEL_DIR>/ACTIVE` names the active version; a running server notices when it
changes and loads the new one on its next prediction, with no restart. Training never runs on the request path.
"""

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import joblib
import numpy as np
from flask import current_app
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sqlalchemy import select

from pawmanity.core.errors import ServiceUnavailable
from pawmanity.triage.cases import dataset_hash, encoder_for, generate
from pawmanity.triage.knowledge import knowledge_base

MODEL_NAME = "pawmanity-triage"
SPECIES = ("human", "dog", "cat")


FEEDBACK_WEIGHT = 5  # a confirmed real case counts as this many synthetic ones


def train(*, cases_per_species, seed, holdout=0.2, with_feedback=False, progress=None):
    """Train all species; returns (bundle, meta). `progress(step_name)` is called as each step finishes.

    With feedback, the cases doctors confirmed join the training part only: the held-out cases stay synthetic, so
    metrics stay comparable between versions trained with the same seed.
    """
    kb = knowledge_base()
    bundle, metrics, hashes, confirmed = {}, {}, {}, {}
    for species in SPECIES:
        X, conditions, urgencies = generate(kb, species, cases_per_species, seed)
        hashes[species] = dataset_hash(kb, species, cases_per_species, seed)
        X_train, X_test, c_train, c_test, u_train, u_test = train_test_split(
            X, conditions, urgencies, test_size=holdout, random_state=seed, stratify=conditions)
        if with_feedback:
            X_extra, c_extra, u_extra = _feedback_cases(kb, species)
            confirmed[species] = len(c_extra) // FEEDBACK_WEIGHT
            if len(c_extra):
                X_train = np.vstack([X_train, X_extra])
                c_train, u_train = np.concatenate([c_train, c_extra]), np.concatenate([u_train, u_extra])
        condition_model = LogisticRegression(max_iter=2000, C=1.0).fit(X_train, c_train)
        if progress:
            progress(f"{species}: condition model")
        urgency_model = LogisticRegression(max_iter=2000, C=1.0).fit(X_train, u_train)
        if progress:
            progress(f"{species}: urgency model")
        metrics[species] = _evaluate(condition_model, urgency_model, X_test, c_test, u_test)
        bundle[species] = {"symptom_codes": encoder_for(kb, species).symptom_codes,
                           "condition_model": condition_model, "urgency_model": urgency_model}
    created = datetime.now(timezone.utc)
    meta = {"name": MODEL_NAME, "version": f"{kb.version}-{created.strftime('%Y%m%dT%H%M%S.%fZ')}",
            "created_at": created.isoformat().replace("+00:00", "Z"), "knowledge_base_version": kb.version,
            "training": {"cases_per_species": cases_per_species, "seed": seed, "holdout": holdout,
                         "data_sha256": hashes, "confirmed_cases": confirmed},
            "metrics": metrics}
    return bundle, meta


def _feedback_cases(kb, species):
    from pawmanity.core.extensions import db
    from pawmanity.triage.models import DiagnosisFeedback

    encoder = encoder_for(kb, species)
    rows = db.session.scalars(select(DiagnosisFeedback).where(DiagnosisFeedback.species == species)).all()
    X, conditions, urgencies = [], [], []
    for row in rows:
        symptoms = {s["code"]: (s["severity"], s["duration_days"]) for s in row.case["symptoms"]
                    if s["code"] in encoder.symptom_codes}
        vector = encoder.encode(symptoms, row.case.get("age_years") or 0.0, row.case.get("sex"))
        urgency = kb.conditions_for(species)[row.confirmed_condition].urgency
        for _ in range(FEEDBACK_WEIGHT):
            X.append(vector)
            conditions.append(row.confirmed_condition)
            urgencies.append(urgency)
    return np.array(X, dtype=np.float32).reshape(-1, encoder.width), np.array(conditions), np.array(urgencies)


def retrain_if_not_worse(*, cases_per_species=None):
    """The weekly job: retrain with confirmed cases, activate only if no species got worse on held-out cases."""
    try:
        _, current = active()
    except ServiceUnavailable:
        current = None
    seed = current["training"]["seed"] if current else 2026
    cases = cases_per_species or (current["training"]["cases_per_species"] if current
                                  else current_app.config["AI_TRAINING_CASES"])
    bundle, meta = train(cases_per_species=cases, seed=seed, with_feedback=True)
    better_or_equal = current is None or all(
        meta["metrics"][species][name] >= current["metrics"][species][name]
        for species in SPECIES for name in ("top1_accuracy", "top3_accuracy"))
    save(bundle, meta, activate=better_or_equal)
    return {"version": meta["version"], "activated": better_or_equal}


def _evaluate(condition_model, urgency_model, X, conditions, urgencies):
    probabilities = condition_model.predict_proba(X)
    classes = condition_model.classes_
    ranked = np.argsort(-probabilities, axis=1)
    truth = np.searchsorted(classes, conditions)
    top1 = float(np.mean(ranked[:, 0] == truth))
    top3 = float(np.mean(np.any(ranked[:, :3] == truth[:, None], axis=1)))
    predicted_urgency = urgency_model.predict(X)
    recall = {str(level): float(np.mean(predicted_urgency[urgencies == level] == level))
              for level in sorted(set(urgencies.tolist()))}
    return {"holdout_cases": int(len(X)), "top1_accuracy": round(top1, 4), "top3_accuracy": round(top3, 4),
            "urgency_recall": {level: round(value, 4) for level, value in recall.items()}}


def save(bundle, meta, *, activate):
    folder = model_dir() / meta["version"]
    folder.mkdir(parents=True, exist_ok=False)
    joblib.dump(bundle, folder / "models.joblib", compress=3)
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    if activate:
        set_active(meta["version"])
    return folder


def set_active(version):
    if not (model_dir() / version / "meta.json").is_file():
        raise FileNotFoundError(f"no model version {version!r} in {model_dir()}")
    pointer = model_dir() / "ACTIVE"
    temporary = pointer.with_suffix(".tmp")
    temporary.write_text(version + "\n")
    os.replace(temporary, pointer)  # atomic: a reader sees the old name or the new one


def model_dir():
    return Path(current_app.config["AI_MODEL_DIR"])


def active():
    """(bundle, meta) of the active version, loaded once per version; 503 when there is none usable."""
    pointer = model_dir() / "ACTIVE"
    try:
        version = pointer.read_text().strip()
    except FileNotFoundError:
        raise ServiceUnavailable("No symptom-checker model is active; run `flask ai train`.",
                                 code="model_unavailable") from None
    cache = current_app.extensions.setdefault("triage_model", {})
    if cache.get("version") != version:
        folder = model_dir() / version
        try:
            meta = json.loads((folder / "meta.json").read_text())
            bundle = joblib.load(folder / "models.joblib")
            if set(bundle) != set(SPECIES):
                raise ValueError("species missing from the artefact")
        except Exception as error:  # a missing or corrupt artefact is an outage, reported, never a 500
            current_app.logger.error("model %s could not be loaded: %s", version, error)
            raise ServiceUnavailable("The symptom-checker model could not be loaded.",
                                     code="model_unavailable") from None
        cache.update(version=version, bundle=bundle, meta=meta)
    return cache["bundle"], cache["meta"]
