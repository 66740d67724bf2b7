"""Synthetic cases from the knowledge base, reproducible from a seed, and the case features the model shares.

A case draws a condition by its prior (every condition at least MIN_CASES_PER_CONDITION times), an age mostly inside
the condition's typical range, a sex from its skew, and each symptom with its likelihood (plus a little background
noise, since real people report stray symptoms). Severity and duration come from the condition's own sourced
`course` ranges, never from its urgency; a share of cases gets them at random, because people report both loosely.
"""

import hashlib
import json
from dataclasses import dataclass

import numpy as np

BACKGROUND_RATE = 0.03
MIN_CASES_PER_CONDITION = 60
OUT_OF_RANGE_AGE_RATE = 0.05    # a condition seen outside its typical ages (see atypical_ages)
LOOSE_REPORT_RATE = 0.15        # severity and duration reported at random rather than from the course
SEXES = ("female", "male")
# Illness duration (days) and worst severity are binned; the edges are the usual triage questions ("since when?").
DURATION_EDGES = (0.25, 1.0, 3.0, 7.0, 30.0)
SEVERITY_EDGES = (4, 7, 9)      # 1-3 mild, 4-6 moderate, 7-8 severe, 9-10 worst


@dataclass(frozen=True)
class Features:
    """One species' case layout: which symptoms, which age bands."""

    species: str
    symptom_codes: tuple
    age_bands: tuple                # ((name, from, to), ...) in order

    def symptom_index(self):
        return {code: index for index, code in enumerate(self.symptom_codes)}

    def age_bin(self, age_years):
        for index, (_, low, high) in enumerate(self.age_bands):
            if low <= age_years < high:
                return index
        return len(self.age_bands) - 1


def duration_bin(days):
    return int(np.searchsorted(DURATION_EDGES, days, side="right"))


def severity_bin(severity):
    return int(np.searchsorted(SEVERITY_EDGES, severity, side="right"))


def features_for(kb, species):
    bands = tuple((name, low, high) for name, (low, high) in kb.age_bands[species].items())
    return Features(species=species, symptom_codes=tuple(sorted(kb.symptoms_for(species))), age_bands=bands)


@dataclass
class Cases:
    """Synthetic (or confirmed) cases of one species, as arrays."""

    present: np.ndarray     # (n, symptoms) bool
    age_bin: np.ndarray     # (n,) int
    male: np.ndarray        # (n,) bool
    duration_bin: np.ndarray
    severity_bin: np.ndarray
    conditions: np.ndarray  # (n,) condition codes
    urgencies: np.ndarray

    def __len__(self):
        return len(self.conditions)

    def subset(self, index):
        return Cases(*(getattr(self, name)[index] for name in ("present", "age_bin", "male", "duration_bin",
                                                               "severity_bin", "conditions", "urgencies")))

    @staticmethod
    def concatenate(parts):
        parts = [part for part in parts if len(part)]
        return Cases(*(np.concatenate([getattr(part, name) for part in parts])
                       for name in ("present", "age_bin", "male", "duration_bin", "severity_bin", "conditions",
                                    "urgencies")))


def generate(kb, species, n_cases, seed):
    """`n_cases` synthetic cases of one species (at least MIN_CASES_PER_CONDITION of every condition)."""
    rng = np.random.default_rng(seed)
    features = features_for(kb, species)
    conditions = list(kb.conditions_for(species).values())
    index = features.symptom_index()
    likelihood = np.full((len(conditions), len(index)), BACKGROUND_RATE)
    for row, condition in enumerate(conditions):
        for code, p in condition.symptoms.items():
            likelihood[row, index[code]] = p
    priors = np.array([condition.prior for condition in conditions])
    floor = np.repeat(np.arange(len(conditions)), MIN_CASES_PER_CONDITION)
    drawn = rng.choice(len(conditions), size=max(n_cases - len(floor), 0), p=priors / priors.sum())
    picks = rng.permutation(np.concatenate([floor, drawn]))
    n = len(picks)
    present = rng.random((n, len(index))) < likelihood[picks]
    for row in np.flatnonzero(~present.any(axis=1)):  # nobody asks a triage tool about nothing
        condition = conditions[picks[row]]
        present[row, index[max(condition.symptoms, key=condition.symptoms.get)]] = True
    max_age = kb.max_age_years[species]
    ages, males, durations, severities = np.empty(n), np.empty(n, bool), np.empty(n, int), np.empty(n, int)
    for row, pick in enumerate(picks):
        condition = conditions[pick]
        low, high = condition.age_years
        high = min(high, max_age)
        ages[row] = rng.uniform(low, high) if rng.random() >= OUT_OF_RANGE_AGE_RATE \
            else rng.uniform(*atypical_ages(condition, max_age))
        male_share = condition.sex.get("male", 1 - condition.sex.get("female", 0.5)) if condition.sex else 0.5
        males[row] = rng.random() < male_share
        if rng.random() < LOOSE_REPORT_RATE:
            durations[row] = duration_bin(float(np.exp(rng.uniform(np.log(0.02), np.log(365)))))
            severities[row] = severity_bin(int(rng.integers(1, 11)))
        else:
            d_low, d_high = condition.duration_days
            durations[row] = duration_bin(float(np.exp(rng.uniform(np.log(d_low), np.log(d_high)))))
            severities[row] = severity_bin(int(rng.integers(condition.severity[0], condition.severity[1] + 1)))
    return Cases(present=present, age_bin=np.array([features.age_bin(age) for age in ages]), male=males,
                 duration_bin=durations, severity_bin=severities,
                 conditions=np.array([conditions[pick].code for pick in picks]),
                 urgencies=np.array([conditions[pick].urgency for pick in picks]))


def atypical_ages(condition, max_age):
    """Where a condition's atypical cases fall: down to half its youngest typical age, a quarter of its range beyond
    its oldest. Never anywhere in life: a heart attack is rare at 25, unheard of in a newborn."""
    low, high = condition.age_years[0], min(condition.age_years[1], max_age)
    return low / 2, min(max_age, high + (high - low) / 4)


def dataset_hash(kb, species, n_cases, seed):
    """Identifies the training data: the knowledge base version and content, the species, the size and the seed."""
    content = json.dumps({"version": kb.version, "species": species, "n": n_cases, "seed": seed,
                          "conditions": {c.code: [c.prior, c.urgency, sorted(c.symptoms.items()), c.age_years,
                                                  c.duration_days, c.severity, sorted(c.sex.items())]
                                         for c in kb.conditions_for(species).values()}},
                         sort_keys=True, default=list)
    return hashlib.sha256(content.encode()).hexdigest()
