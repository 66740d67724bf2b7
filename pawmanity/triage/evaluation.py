"""The held-out vignettes (pawmanity/data/vignettes.yaml) as a release gate.

Per species: coverage (cases whose condition the knowledge base knows), top-1 and top-3 on covered cases, triage
accuracy on all cases, the under-triage rate, and the share of emergencies flagged at level 5. The gate: every
emergency at level 5, no self-care advice for a case that needs care, top-3 on covered cases at least GATE_TOP3.

Triage is compared in the four categories a caller acts on: self-care (1), see a clinician (2-3), within hours (4),
emergency (5). The vignettes never tune anything (see VIGNETTE_CHANGELOG.md); they only decide whether a model ships.
"""

from functools import cache
from importlib import resources

import yaml
from flask import current_app

from pawmanity.core.errors import ServiceUnavailable
from pawmanity.triage import assessment, classifier
from pawmanity.triage.knowledge import knowledge_base

GATE_TOP3 = 0.85
SPECIES = ("human", "dog", "cat")
CATEGORY = {1: 0, 2: 1, 3: 1, 4: 2, 5: 3}


@cache
def vignettes():
    text = resources.files("pawmanity.data").joinpath("vignettes.yaml").read_text(encoding="utf-8")
    return tuple(yaml.safe_load(text)["cases"])


def evaluate(model=None, *, cases=None, assess_case=None):
    """A report per species. `assess_case(case) -> (ranked condition codes, urgency level)`; by default the
    current assessment with `model` ((bundle, meta), or the active one)."""
    assess_case = assess_case or _assessor(model)
    outcomes = [_outcome(case, *assess_case(case)) for case in (cases or vignettes())]
    return {species: _species_report([o for o in outcomes if o["species"] == species]) for species in SPECIES}


def _assessor(model):
    kb = knowledge_base()

    def assess_case(case):
        age = kb.age_range(case["species"], age_years=case.get("age_years"), age_band=case.get("age_band"))
        symptoms = [{"code": code, "severity": severity, "duration_days": days}
                    for code, (severity, days) in case["symptoms"].items()]
        result = assessment.assess(case["species"], symptoms, age_range=age, sex=case.get("sex"), model=model)
        ranked = list(result["raw"]["condition_probabilities"])  # already best first
        return ([] if result["not_recognised"] else ranked), result["urgency"]["level"]

    return assess_case


def _outcome(case, ranked, level):
    expected = case["urgency"]
    return {"id": case["id"], "species": case["species"], "covered": case.get("condition") is not None,
            "top1": bool(ranked[:1]) and ranked[0] == case.get("condition"),
            "top3": case.get("condition") in ranked[:3], "expected": expected, "level": level,
            "triage_correct": CATEGORY[level] == CATEGORY[expected],
            "under_triage": CATEGORY[level] < CATEGORY[expected],
            "self_care_for_care": level == 1 and expected >= 2}


def _species_report(outcomes):
    covered = [o for o in outcomes if o["covered"]]
    emergencies = [o for o in outcomes if o["expected"] == 5]

    def share(items, key):
        return round(sum(o[key] for o in items) / len(items), 4) if items else None

    return {"cases": len(outcomes), "covered": len(covered),
            "coverage": round(len(covered) / len(outcomes), 4) if outcomes else None,
            "top1_covered": share(covered, "top1"), "top3_covered": share(covered, "top3"),
            "triage_accuracy": share(outcomes, "triage_correct"), "under_triage_rate": share(outcomes, "under_triage"),
            "emergencies": len(emergencies),
            "emergencies_at_5": round(sum(o["level"] == 5 for o in emergencies) / len(emergencies), 4)
            if emergencies else None,
            "self_care_for_care": sum(o["self_care_for_care"] for o in outcomes),
            "missed_emergencies": [o["id"] for o in emergencies if o["level"] != 5],
            "under_triaged": [o["id"] for o in outcomes if o["under_triage"]],
            "top3_misses": [o["id"] for o in covered if not o["top3"]]}


def gate(report):
    """(passed, reasons it failed)."""
    failures = []
    for species, figures in report.items():
        if figures["emergencies"] and figures["emergencies_at_5"] < 1:
            failures.append(f"{species}: emergencies not at level 5: {', '.join(figures['missed_emergencies'])}")
        if figures["self_care_for_care"]:
            failures.append(f"{species}: {figures['self_care_for_care']} case(s) needing care got self-care advice")
        if figures["covered"] and figures["top3_covered"] < GATE_TOP3:
            failures.append(f"{species}: top-3 on covered cases {figures['top3_covered']:.0%} < {GATE_TOP3:.0%}")
    return not failures, failures


def summary(report, passed, failures):
    """What the model's meta.json keeps: the figures without the case lists, and the gate's verdict."""
    return {"vignettes": len(vignettes()), "gate_passed": passed, "gate_failures": failures,
            "figures": {species: {key: value for key, value in figures.items() if not isinstance(value, list)}
                        for species, figures in report.items()}}


def format_report(report):
    header = (f"{'species':8}{'cases':>6}{'coverage':>10}{'top-1':>8}{'top-3':>8}{'triage':>8}{'under':>8}"
              f"{'emerg@5':>9}{'self-care!':>11}")
    lines = [header]
    for species, f in report.items():
        def pct(value):
            return "   n/a" if value is None else f"{value:6.1%}"
        lines.append(f"{species:8}{f['cases']:>6}{pct(f['coverage']):>10}{pct(f['top1_covered']):>8}"
                     f"{pct(f['top3_covered']):>8}{pct(f['triage_accuracy']):>8}{pct(f['under_triage_rate']):>8}"
                     f"{pct(f['emergencies_at_5']):>9}{f['self_care_for_care']:>11}")
    return lines


def retrain_if_not_worse(*, cases_per_species=None):
    """The weekly job: retrain with confirmed cases; activate only if the release gate passes on the held-out
    vignettes and no species got worse on held-out synthetic cases."""
    try:
        _, current = classifier.active()
    except ServiceUnavailable:
        current = None
    if current is not None and current.get("kind") != classifier.MODEL_KIND:
        current = None  # a model of another kind: its metrics are not comparable
    seed = current["training"]["seed"] if current else 2026
    cases = cases_per_species or (current["training"]["cases_per_species"] if current
                                  else current_app.config["AI_TRAINING_CASES"])
    bundle, meta = classifier.train(cases_per_species=cases, seed=seed, with_feedback=True)
    report = evaluate((bundle, meta))
    gate_passed, failures = gate(report)
    meta["vignettes"] = summary(report, gate_passed, failures)
    better_or_equal = current is None or all(
        meta["metrics"][species][name] >= current["metrics"][species][name]
        for species in classifier.SPECIES for name in ("top1_accuracy", "top3_accuracy"))
    activate = gate_passed and better_or_equal
    classifier.save(bundle, meta, activate=activate)
    return {"version": meta["version"], "activated": activate, "gate_passed": gate_passed, "gate_failures": failures}
