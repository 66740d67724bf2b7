"""Training, storing and loading the symptom checker's model.

Per species, the model is a naive Bayes classifier over the knowledge base's own structure: P(condition) from the
knowledge base's priors, and P(symptom | condition), P(age band | condition), P(sex | condition), P(illness duration
| condition) and P(worst severity | condition) estimated by counting synthetic cases generated from the knowledge
base (plus, with feedback, the cases doctors confirmed), with light smoothing. It is the generative model the
knowledge base describes, so the same numbers rank conditions, say how well the entered symptoms fit any of them
("not recognised"), and choose the interview's next question by expected information gain. A prediction is a few
vector sums (well under a millisecond); the artefact is a few hundred kilobytes of arrays.

Symptoms nobody mentioned count weakly against a condition (UNMENTIONED_WEIGHT), because people list what bothers
them most, not everything they have; a symptom denied in the interview counts fully.

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
from sqlalchemy import select

from pawmanity.core.errors import ServiceUnavailable
from pawmanity.core.extensions import db
from pawmanity.triage.cases import (
    DURATION_EDGES,
    OUT_OF_RANGE_AGE_RATE,
    SEVERITY_EDGES,
    Cases,
    atypical_ages,
    dataset_hash,
    duration_bin,
    features_for,
    generate,
    severity_bin,
)
from pawmanity.triage.knowledge import knowledge_base
from pawmanity.triage.models import DiagnosisFeedback

MODEL_NAME = "pawmanity-triage"
MODEL_KIND = "naive-bayes-1"
SPECIES = ("human", "dog", "cat")
FEEDBACK_WEIGHT = 5        # a confirmed real case counts as this many synthetic ones
UNMENTIONED_WEIGHT = 0.3   # set a priori (people under-report); never tuned on the held-out vignettes
SYMPTOM_SMOOTHING = 2.0    # pseudo-cases at the background rate
BIN_SMOOTHING = 0.5        # pseudo-count per duration and severity bin
# Age: smoothed toward the knowledge base's own statement (the condition's typical ages, plus the small share seen at
# any age) with this many pseudo-cases, so a rare condition's age profile does not hinge on a handful of draws and
# an age the condition does not occur at stays near impossible (a newborn does not have a heart attack).
AGE_PRIOR_CASES = 20.0


def train(*, cases_per_species, seed, holdout=0.2, with_feedback=False, progress=None):
    """Train all species; returns (bundle, meta). `progress(step_name)` is called as each step finishes.

    With feedback, the cases doctors confirmed join the training part only: the held-out cases stay synthetic, so
    metrics stay comparable between versions trained with the same seed.
    """
    kb = knowledge_base()
    bundle, metrics, hashes, confirmed = {}, {}, {}, {}
    for species in SPECIES:
        cases = generate(kb, species, cases_per_species, seed)
        hashes[species] = dataset_hash(kb, species, cases_per_species, seed)
        order = np.random.default_rng(seed).permutation(len(cases))
        n_test = int(len(cases) * holdout)
        test, training = cases.subset(order[:n_test]), cases.subset(order[n_test:])
        if with_feedback:
            extra = _feedback_cases(kb, species)
            confirmed[species] = len(extra) // FEEDBACK_WEIGHT
            training = Cases.concatenate([training, extra])
        model = fit(kb, species, training)
        if progress:
            progress(f"{species}: model")
        metrics[species] = _evaluate(model, test)
        if progress:
            progress(f"{species}: held-out metrics")
        bundle[species] = model
    created = datetime.now(timezone.utc)
    meta = {"name": MODEL_NAME, "kind": MODEL_KIND,
            "version": f"{kb.version}-{created.strftime('%Y%m%dT%H%M%S.%fZ')}",
            "created_at": created.isoformat().replace("+00:00", "Z"), "knowledge_base_version": kb.version,
            "training": {"cases_per_species": cases_per_species, "seed": seed, "holdout": holdout,
                         "data_sha256": hashes, "confirmed_cases": confirmed},
            "metrics": metrics}
    return bundle, meta


def fit(kb, species, cases):
    """Estimate one species' model from cases (counts plus smoothing); priors come from the knowledge base."""
    features = features_for(kb, species)
    conditions = kb.conditions_for(species)
    codes = tuple(sorted(conditions))
    n_bins = {"age": len(features.age_bands), "duration": len(DURATION_EDGES) + 1,
              "severity": len(SEVERITY_EDGES) + 1}
    p_symptom = np.empty((len(codes), len(features.symptom_codes)))
    log_age, log_duration, log_severity = (np.empty((len(codes), n)) for n in n_bins.values())
    log_male = np.empty((len(codes), 2))
    for row, code in enumerate(codes):
        mine = cases.conditions == code
        n = int(mine.sum())
        p_symptom[row] = (cases.present[mine].sum(axis=0) + SYMPTOM_SMOOTHING * 0.03) / (n + SYMPTOM_SMOOTHING)
        age_prior = AGE_PRIOR_CASES * _age_shares(conditions[code], features.age_bands, kb.max_age_years[species])
        for target, values, size, smoothing in ((log_age, cases.age_bin, n_bins["age"], age_prior),
                                                (log_duration, cases.duration_bin, n_bins["duration"], BIN_SMOOTHING),
                                                (log_severity, cases.severity_bin, n_bins["severity"], BIN_SMOOTHING)):
            counts = np.bincount(values[mine], minlength=size) + smoothing
            target[row] = np.log(counts / counts.sum())
        males = (cases.male[mine].sum() + 1) / (n + 2)
        log_male[row] = np.log([1 - males, males])
    priors = np.array([conditions[code].prior for code in codes])
    return with_derived({"kind": MODEL_KIND, "symptom_codes": features.symptom_codes, "condition_codes": codes,
            "age_bands": features.age_bands, "urgency": np.array([conditions[code].urgency for code in codes]),
            "log_prior": np.log(priors / priors.sum()), "p_symptom": p_symptom.astype(np.float32),
            "log_age": log_age.astype(np.float32), "log_male": log_male.astype(np.float32),
            "log_duration": log_duration.astype(np.float32), "log_severity": log_severity.astype(np.float32)})


def _age_shares(condition, bands, max_age):
    """The share of a condition's cases in each age band, as the knowledge base states it (the generator's own
    distribution: typical ages, plus OUT_OF_RANGE_AGE_RATE spread over the atypical ones)."""
    low, high = condition.age_years[0], min(condition.age_years[1], max_age)
    atypical_low, atypical_high = atypical_ages(condition, max_age)

    def overlap(a, b, c, d):
        return max(0.0, min(b, d) - max(a, c))

    shares = np.array([(1 - OUT_OF_RANGE_AGE_RATE) * overlap(b_low, b_high, low, high) / max(high - low, 1e-9)
                       + OUT_OF_RANGE_AGE_RATE * overlap(b_low, b_high, atypical_low, atypical_high)
                       / max(atypical_high - atypical_low, 1e-9) for _, b_low, b_high in bands])
    return shares + 1e-6


DERIVED = ("log_p", "log_q", "log_q_total")


def with_derived(model):
    """Add the log tables predictions use; they are recomputed on load rather than stored (a smaller artefact)."""
    p = model["p_symptom"].astype(np.float64)
    return {**model, "log_p": np.log(p), "log_q": np.log1p(-p), "log_q_total": np.log1p(-p).sum(axis=1)}


def log_joint(model, present, denied=(), *, age_bins=None, sex=None, duration=None, severity=None):
    """Unnormalised log P(condition, evidence) for every condition.

    present: symptom indices reported; denied: symptom indices the patient said they do not have; age_bins: the
    bands the patient's age may be in (None: unknown); duration / severity: bins, or None.
    """
    log_p, log_q = model["log_p"], model["log_q"]
    score = model["log_prior"].copy()
    mentioned = list(present) + list(denied)
    if present:
        score += log_p[:, list(present)].sum(axis=1)
    if denied:
        score += log_q[:, list(denied)].sum(axis=1)
    unmentioned = model["log_q_total"] - (log_q[:, mentioned].sum(axis=1) if mentioned else 0)
    score += UNMENTIONED_WEIGHT * unmentioned
    if age_bins:
        score += np.logaddexp.reduce(model["log_age"][:, list(age_bins)], axis=1)
    if sex in ("male", "female"):
        score += model["log_male"][:, 1 if sex == "male" else 0]
    if duration is not None:
        score += model["log_duration"][:, duration]
    if severity is not None:
        score += model["log_severity"][:, severity]
    return score


def posterior(model, present, denied=(), **evidence):
    score = log_joint(model, present, denied, **evidence)
    score -= score.max()
    probabilities = np.exp(score)
    return probabilities / probabilities.sum()


def case_evidence(symptoms, *, age_range=None, sex=None):
    """symptoms: {code: (severity, duration_days)} -> the duration, severity and sex evidence of `log_joint`."""
    worst = max(severity for severity, _ in symptoms.values()) if symptoms else None
    longest = max(days for _, days in symptoms.values()) if symptoms else None
    return {"duration": None if longest is None else duration_bin(longest),
            "severity": None if worst is None else severity_bin(worst), "sex": sex}


def age_bins_for(model, age_range):
    if age_range is None:
        return None
    youngest, oldest = age_range
    if oldest <= youngest:  # an exact age
        return [next((index for index, (_, low, high) in enumerate(model["age_bands"]) if low <= youngest < high),
                     len(model["age_bands"]) - 1)]
    return [index for index, (_, low, high) in enumerate(model["age_bands"]) if low < oldest and high > youngest]


def _feedback_cases(kb, species):

    features = features_for(kb, species)
    index = features.symptom_index()
    rows = db.session.scalars(select(DiagnosisFeedback).where(DiagnosisFeedback.species == species)).all()
    present, age, male, duration, severity, conditions, urgencies = [], [], [], [], [], [], []
    for row in rows:
        symptoms = {s["code"]: (s["severity"], s["duration_days"]) for s in row.case["symptoms"] if s["code"] in index}
        vector = np.zeros(len(index), bool)
        vector[[index[code] for code in symptoms]] = True
        evidence = case_evidence(symptoms)
        for _ in range(FEEDBACK_WEIGHT):
            present.append(vector)
            age.append(features.age_bin(row.case.get("age_years") or 0.0))
            male.append(row.case.get("sex") == "male")
            duration.append(evidence["duration"] or 0)
            severity.append(evidence["severity"] or 0)
            conditions.append(row.confirmed_condition)
            urgencies.append(kb.conditions_for(species)[row.confirmed_condition].urgency)
    return Cases(present=np.array(present, bool).reshape(-1, len(index)), age_bin=np.array(age, int),
                 male=np.array(male, bool), duration_bin=np.array(duration, int),
                 severity_bin=np.array(severity, int), conditions=np.array(conditions, dtype=object),
                 urgencies=np.array(urgencies, int))


def _evaluate(model, cases):
    index = {code: i for i, code in enumerate(model["condition_codes"])}
    top1 = top3 = 0
    urgency_hits = {}
    for row in range(len(cases)):
        present = np.flatnonzero(cases.present[row]).tolist()
        probabilities = posterior(model, present, age_bins=[int(cases.age_bin[row])],
                                  sex="male" if cases.male[row] else "female",
                                  duration=int(cases.duration_bin[row]), severity=int(cases.severity_bin[row]))
        ranked = np.argsort(-probabilities)
        truth = index[cases.conditions[row]]
        top1 += ranked[0] == truth
        top3 += truth in ranked[:3]
        level = int(cases.urgencies[row])
        predicted = max(int(model["urgency"][c]) for c in np.flatnonzero(probabilities > 0.15)) \
            if (probabilities > 0.15).any() else int(model["urgency"][ranked[0]])
        urgency_hits.setdefault(level, []).append(predicted >= level)
    n = max(len(cases), 1)
    return {"holdout_cases": len(cases), "top1_accuracy": round(float(top1) / n, 4),
            "top3_accuracy": round(float(top3) / n, 4),
            "urgency_recall": {str(level): round(float(np.mean(hits)), 4)
                               for level, hits in sorted(urgency_hits.items())}}


def save(bundle, meta, *, activate):
    folder = model_dir() / meta["version"]
    folder.mkdir(parents=True, exist_ok=False)
    stored = {species: {key: value for key, value in model.items() if key not in DERIVED}
              for species, model in bundle.items()}
    joblib.dump(stored, folder / "models.joblib", compress=3)
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    if activate:
        set_active(meta["version"])
    return folder


def set_active(version):
    _folder(version)  # refuses an unknown version
    model_dir().mkdir(parents=True, exist_ok=True)
    pointer = model_dir() / "ACTIVE"
    temporary = pointer.with_suffix(".tmp")
    temporary.write_text(version + "\n")
    os.replace(temporary, pointer)  # atomic: a reader sees the old name or the new one


def model_dir():
    """Where trained versions and the ACTIVE pointer are written."""
    return Path(current_app.config["AI_MODEL_DIR"])


def shipped_dir():
    """The read-only artefact that ships with the code, active until a trained version is."""
    return Path(current_app.config["AI_SHIPPED_MODEL_DIR"])


def _folder(version):
    for base in (model_dir(), shipped_dir()):
        if (base / version / "meta.json").is_file():
            return base / version
    raise FileNotFoundError(f"no model version {version!r} in {model_dir()} or {shipped_dir()}")


def _active_version():
    for base in (model_dir(), shipped_dir()):
        try:
            return (base / "ACTIVE").read_text().strip()
        except FileNotFoundError:
            continue
    return None


def load(version):
    """(bundle, meta) of a stored version, active or not (evaluating before activating)."""
    folder = _folder(version)
    bundle = {species: with_derived(model) for species, model in joblib.load(folder / "models.joblib").items()}
    return bundle, json.loads((folder / "meta.json").read_text())


def active():
    """(bundle, meta) of the active version, loaded once per version; 503 when there is none usable."""
    version = _active_version()
    if version is None:
        raise ServiceUnavailable("No symptom-checker model is active; run `flask ai train`.",
                                 code="model_unavailable")
    cache = current_app.extensions.setdefault("triage_model", {})
    if cache.get("version") != version:
        try:
            folder = _folder(version)
            meta = json.loads((folder / "meta.json").read_text())
            bundle = {species: with_derived(model) for species, model in joblib.load(folder / "models.joblib").items()}
            if set(bundle) != set(SPECIES):
                raise ValueError("species missing from the artefact")
            if any(bundle[species].get("kind") != MODEL_KIND for species in SPECIES):
                raise ValueError(f"not a {MODEL_KIND} artefact")
        except Exception as error:  # a missing or corrupt artefact is an outage, reported, never a 500
            current_app.logger.error("model %s could not be loaded: %s", version, error)
            raise ServiceUnavailable("The symptom-checker model could not be loaded.",
                                     code="model_unavailable") from None
        cache.update(version=version, bundle=bundle, meta=meta)
    return cache["bundle"], cache["meta"]
