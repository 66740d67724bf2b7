"""Synthetic cases from the knowledge base, reproducible from a seed, and the feature encoding the models share.

A case draws a condition by its prior, an age mostly inside the condition's typical range, a sex from its skew, and
each symptom with its likelihood (plus a little background noise, since real people report stray symptoms). Each
present symptom gets a severity (1-10) and a duration in days; emergencies skew severe and short.
"""

import hashlib
import json
from dataclasses import dataclass

import numpy as np

BACKGROUND_RATE = 0.03
MIN_CASES_PER_CONDITION = 5
SEXES = ("female", "male")


@dataclass(frozen=True)
class Encoder:
    """Turns (symptoms, age, sex) into a fixed-length vector for one species."""

    species: str
    symptom_codes: tuple

    @property
    def width(self):
        return 3 * len(self.symptom_codes) + 2

    def encode(self, symptoms, age_years, sex):
        """symptoms: {code: (severity 1-10, duration_days)}; unknown codes are the caller's to refuse."""
        row = np.zeros(self.width, dtype=np.float32)
        n = len(self.symptom_codes)
        for index, code in enumerate(self.symptom_codes):
            if code in symptoms:
                severity, duration = symptoms[code]
                row[index] = 1.0
                row[n + index] = severity / 10.0
                row[2 * n + index] = np.log1p(duration)
        row[3 * n] = np.log1p(max(age_years, 0.0))
        row[3 * n + 1] = 1.0 if sex == "male" else 0.0 if sex == "female" else 0.5
        return row


def encoder_for(kb, species):
    return Encoder(species=species, symptom_codes=tuple(sorted(kb.symptoms_for(species))))


def generate(kb, species, n_cases, seed):
    """(X, condition codes, urgency levels) for `n_cases` synthetic cases of one species."""
    rng = np.random.default_rng(seed)
    encoder = encoder_for(kb, species)
    conditions = list(kb.conditions_for(species).values())
    priors = np.array([condition.prior for condition in conditions])
    # Every condition appears a few times even in a small set, so a rare emergency is never missing from training.
    floor = np.repeat(np.arange(len(conditions)), MIN_CASES_PER_CONDITION)
    drawn = rng.choice(len(conditions), size=max(n_cases - len(floor), 0), p=priors / priors.sum())
    picks = rng.permutation(np.concatenate([floor, drawn]))[:max(n_cases, len(floor))]
    n_cases = len(picks)
    X = np.zeros((n_cases, encoder.width), dtype=np.float32)
    labels, urgencies = [], []
    for row, pick in enumerate(picks):
        condition = conditions[pick]
        symptoms = {}
        for code in encoder.symptom_codes:
            likelihood = condition.symptoms.get(code, BACKGROUND_RATE)
            if rng.random() < likelihood:
                symptoms[code] = _severity_and_duration(rng, condition, listed=code in condition.symptoms)
        if not symptoms:  # nobody asks a triage tool about nothing: keep the most likely symptom
            code = max(condition.symptoms, key=condition.symptoms.get)
            symptoms[code] = _severity_and_duration(rng, condition, listed=True)
        low, high = condition.age_years
        age = rng.uniform(low, high) if rng.random() < 0.9 else rng.uniform(0, max(high * 1.3, 1))
        male_share = condition.sex.get("male", 1 - condition.sex.get("female", 0.5)) if condition.sex else 0.5
        sex = "male" if rng.random() < male_share else "female"
        X[row] = encoder.encode(symptoms, age, sex)
        labels.append(condition.code)
        urgencies.append(condition.urgency)
    return X, np.array(labels), np.array(urgencies)


def _severity_and_duration(rng, condition, *, listed):
    base = 3 + condition.urgency if listed else 3
    severity = int(np.clip(rng.normal(base, 1.8), 1, 10))
    typical_days = {5: 0.3, 4: 1.0, 3: 3.0, 2: 5.0, 1: 4.0}[condition.urgency]
    duration = float(rng.gamma(2.0, typical_days / 2.0))
    return severity, duration


def dataset_hash(kb, species, n_cases, seed):
    """Identifies the training data: the knowledge base version and content, the species, the size and the seed."""
    content = json.dumps({"version": kb.version, "species": species, "n": n_cases, "seed": seed,
                          "conditions": {c.code: [c.prior, c.urgency, sorted(c.symptoms.items()), c.age_years]
                                         for c in kb.conditions_for(species).values()}},
                         sort_keys=True, default=list)
    return hashlib.sha256(content.encode()).hexdigest()
