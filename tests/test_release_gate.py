"""The shipped model passes the release gate on the held-out vignettes, and `flask ai evaluate` shows it."""

from pawmanity.triage import classifier, evaluation


def test_the_vignette_set_is_big_enough_and_cited():
    cases = evaluation.vignettes()
    for species, at_least in (("human", 80), ("dog", 40), ("cat", 30)):
        mine = [case for case in cases if case["species"] == species]
        assert len(mine) >= at_least
        assert sum(case["urgency"] == 5 for case in mine) >= len(mine) / 3
    assert all(case["source"] and case["text"] and case["symptoms"] for case in cases)
    assert len({case["id"] for case in cases}) == len(cases)


def test_the_shipped_model_passes_the_gate(app):
    report = evaluation.evaluate(classifier.active())
    passed, failures = evaluation.gate(report)
    assert passed, failures
    for figures in report.values():
        assert figures["emergencies_at_5"] == 1 and figures["self_care_for_care"] == 0
        assert figures["top3_covered"] >= evaluation.GATE_TOP3


def test_the_gate_refuses_a_missed_emergency_or_self_care_for_a_sick_case():
    report = evaluation.evaluate(cases=[
        {"id": "X1", "species": "dog", "condition": "trauma", "urgency": 5, "symptoms": {}},
        {"id": "X2", "species": "cat", "condition": "dental_disease", "urgency": 2, "symptoms": {}},
    ], assess_case=lambda case: (["trauma", "dental_disease"], 4 if case["id"] == "X1" else 1))
    passed, failures = evaluation.gate(report)
    assert not passed and any("X1" in line for line in failures) and any("self-care" in line for line in failures)
    assert report["dog"]["under_triage_rate"] == 1 and report["cat"]["top1_covered"] == 0


def test_flask_ai_evaluate_prints_the_figures(app):
    result = app.test_cli_runner().invoke(args=["ai", "evaluate"])
    assert result.exit_code == 0, result.output
    for text in ("coverage", "top-1", "top-3", "triage", "under", "emerg@5", "release gate: PASS"):
        assert text in result.output


def test_the_weekly_retrain_does_not_activate_a_model_that_fails_the_gate(make_app, tmp_path, monkeypatch):
    app = make_app(AI_MODEL_DIR=str(tmp_path / "models"), AI_TRAINING_CASES=600)
    monkeypatch.setattr(evaluation, "gate", lambda report: (False, ["human: top-3 on covered cases 50%"]))
    with app.app_context():
        outcome = evaluation.retrain_if_not_worse()
        assert outcome["activated"] is False and outcome["gate_failures"] == ["human: top-3 on covered cases 50%"]
        assert not (classifier.model_dir() / "ACTIVE").exists()
        _, meta = classifier.load(outcome["version"])
        assert meta["vignettes"]["gate_passed"] is False and meta["vignettes"]["figures"]["dog"]["cases"] >= 40


def test_the_model_endpoint_shows_the_gate(client, auth, gen_user):
    body = client.get("/api/v1/ai/model", headers=auth(gen_user())).get_json()
    assert body["kind"] == "naive-bayes-1" and body["vignettes"]["gate_passed"] is True
    assert body["vignettes"]["figures"]["cat"]["emergencies_at_5"] == 1


def test_training_writes_to_the_model_folder_never_into_the_source_tree(make_app, tmp_path):
    from pathlib import Path

    shipped = Path(classifier.__file__).resolve().parent.parent / "data" / "models"
    before = {path: path.stat().st_mtime_ns for path in shipped.rglob("*")}
    app = make_app(AI_MODEL_DIR=str(tmp_path / "models"), AI_TRAINING_CASES=600)
    with app.app_context():
        shipped_version = classifier.active()[1]["version"]  # nothing trained yet: the shipped artefact
        bundle, meta = classifier.train(cases_per_species=600, seed=5)
        classifier.save(bundle, meta, activate=True)
        assert classifier.active()[1]["version"] == meta["version"] != shipped_version
    assert (tmp_path / "models" / "ACTIVE").read_text().strip() == meta["version"]
    assert {path: path.stat().st_mtime_ns for path in shipped.rglob("*")} == before
