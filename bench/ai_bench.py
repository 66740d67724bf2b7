"""Latency of the symptom checker: the model call alone, POST /api/v1/ai/diagnoses and one interview step end to end.

Run from the repository root:

    .venv/bin/python bench/ai_bench.py [--calls 2000] [--requests 300] [--model-only]
                                       [--database-url URL] [--redis-url URL]

1. The model call: in-process (no server, no database), the active shipped model times
   `pawmanity.triage.assessment.assess` over a mix of realistic symptom lists for people, dogs and cats.
2. End to end: the bench database is re-created and migrated, the app runs the production way
   (`gunicorn -k gevent -w 1 wsgi:app`, embedded MontyDB for the logs), a patient with a dog signs in, and
   --requests diagnoses are posted one after another over a keep-alive connection (each one: auth, access check,
   assessment, a MongoDB log, an audit row).
3. Interview steps: interviews are started on the same dog and every question is answered (no / unsure) until each
   one finishes; --requests answers are timed (each one: auth, a locked read of the interview, an assessment, the
   choice of the next question, or the final assessment's log; a row update and an audit row).
Targets (issues 6 and 11): model call p99 under 20 ms, endpoint p99 under 60 ms, interview step p99 under 60 ms.
"""

import argparse
import http.client
import json
import random
import statistics
import sys
import tempfile
import time

from harness import (
    REPO,
    add_service_arguments,
    check_service_arguments,
    expect,
    http_json,
    prepare_database,
    run_bench,
    running_server,
)

CASES = [
    ("human", ["nasal_discharge", "sneezing", "sore_throat"]),
    ("human", ["chest_pain", "sweating", "nausea"]),
    ("human", ["fever", "cough", "muscle_aches", "fatigue", "headache"]),
    ("dog", ["vomiting", "diarrhea", "lethargy"]),
    ("dog", ["unproductive_retching", "distended_abdomen", "restlessness"]),
    ("cat", ["increased_thirst", "weight_loss", "frequent_urination"]),
    ("cat", ["sneezing", "eye_discharge", "nasal_discharge"]),
]
DOG_CASES = [codes for species, codes in CASES if species == "dog"] + [["head_shaking", "ear_odor"], ["itching"]]
INTERVIEW_STARTS = [["itching"], ["lethargy"], ["vomiting"], ["limping"], ["cough"]]
API = "/api/v1"
PASSWORD = "bench passphrase 2026"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="model calls to time")
    parser.add_argument("--requests", type=int, default=300, help="diagnoses to post end to end")
    parser.add_argument("--model-only", action="store_true", help="skip the server part")
    add_service_arguments(parser)
    args = parser.parse_args(argv)
    check_service_arguments(parser, args)
    return args


def percentiles(timings):
    timings = sorted(timings)
    return statistics.median(timings), timings[max(int(len(timings) * 0.99) - 1, 0)], timings[-1]


def model_call(calls):
    sys.path.insert(0, str(REPO))
    import os

    os.environ.setdefault("PAWMANITY_INSTANCE_DIR", tempfile.mkdtemp(prefix="pawmanity-ai-bench-"))
    from pawmanity import create_app
    from pawmanity.triage.assessment import assess

    app, rng = create_app("development", plugins=()), random.Random(1)
    with app.app_context():
        for species, codes in CASES * 20:  # warm-up: loads the artefact once
            assess(species, symptom_list(rng, codes), age_years=6, sex="female")
        timings = []
        for n in range(calls):
            species, codes = CASES[n % len(CASES)]
            started = time.perf_counter()
            assess(species, symptom_list(rng, codes), age_years=rng.uniform(1, 80), sex=rng.choice(("female", "male")))
            timings.append((time.perf_counter() - started) * 1000)
    return percentiles(timings)


def endpoint(args, stack):
    work_dir, env = prepare_database(args, stack)
    env.pop("MONGO_URI", None)  # the embedded on-disk store, like `make run`
    print("starting PAWMANITY (gunicorn -k gevent -w 1) ...", flush=True)
    with running_server("pawmanity", "wsgi:app", cwd=REPO, env=env, log_dir=work_dir,
                        ready_path=f"{API}/health") as app:
        base = app.base_url
        expect(*http_json("POST", f"{base}{API}/auth/register", {"email": "ai-bench@example.com",
                                                                 "password": PASSWORD, "full_name": "Bench Owner",
                                                                 "role": "patient"}), 201, "register")
        token = expect(*http_json("POST", f"{base}{API}/auth/login", {"email": "ai-bench@example.com",
                                                                      "password": PASSWORD}), 200, "login")["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        dog = expect(*http_json("POST", f"{base}{API}/patients", {"name": "Biscuit", "species": "dog",
                                                                  "date_of_birth": "2020-05-01"},
                                headers), 201, "create dog")["id"]
        connection, rng, timings = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10), random.Random(2), []
        for n in range(args.requests + 20):
            payload = json.dumps({"patient_id": dog, "symptoms": symptom_list(rng, DOG_CASES[n % len(DOG_CASES)])})
            started = time.perf_counter()
            connection.request("POST", f"{API}/ai/diagnoses", body=payload, headers=headers)
            response = connection.getresponse()
            response.read()
            elapsed = (time.perf_counter() - started) * 1000
            if response.status != 201:
                raise SystemExit(f"diagnosis answered {response.status}")
            if n >= 20:  # the first few warm the worker up
                timings.append(elapsed)
        steps = interview_steps(connection, headers, dog, args.requests, rng)
        connection.close()
    return percentiles(timings), percentiles(steps)


def interview_steps(connection, headers, dog, wanted, rng):
    timings, n = [], 0
    while len(timings) < wanted:
        start = {"patient_id": dog, "symptoms": symptom_list(rng, INTERVIEW_STARTS[n % len(INTERVIEW_STARTS)])}
        n += 1
        interview = _post(connection, f"{API}/ai/interviews", start, headers, 201)
        while interview["status"] == "asking" and len(timings) < wanted:
            answer = {"question_id": interview["question"]["id"], "answer": rng.choice(("no", "no", "unsure"))}
            started = time.perf_counter()
            interview = _post(connection, f"{API}/ai/interviews/{interview['id']}/answers", answer, headers, 200)
            if n > 2:  # the first interviews warm the worker up
                timings.append((time.perf_counter() - started) * 1000)
    return timings


def _post(connection, path, payload, headers, status):
    connection.request("POST", path, body=json.dumps(payload), headers=headers)
    response = connection.getresponse()
    body = response.read()
    if response.status != status:
        raise SystemExit(f"{path} answered {response.status}: {body[:300]!r}")
    return json.loads(body)


def symptom_list(rng, codes):
    return [{"code": code, "severity": rng.randint(1, 10), "duration_days": round(rng.uniform(0.1, 10), 2)}
            for code in codes]


def run(args, stack):
    p50, p99, worst = model_call(args.calls)
    print(f"model call:  {args.calls} assessments  p50 {p50:.2f} ms  p99 {p99:.2f} ms  max {worst:.2f} ms  "
          f"(target p99 < 20 ms: {'PASS' if p99 < 20 else 'NOT MET'})", flush=True)
    ok = p99 < 20
    if not args.model_only:
        (p50, p99, worst), (s50, s99, sworst) = endpoint(args, stack)
        print(f"endpoint:    {args.requests} POST /ai/diagnoses  p50 {p50:.2f} ms  p99 {p99:.2f} ms  "
              f"max {worst:.2f} ms  (target p99 < 60 ms: {'PASS' if p99 < 60 else 'NOT MET'})")
        print(f"interview:   {args.requests} answers  p50 {s50:.2f} ms  p99 {s99:.2f} ms  "
              f"max {sworst:.2f} ms  (target p99 < 60 ms: {'PASS' if s99 < 60 else 'NOT MET'})")
        ok = ok and p99 < 60 and s99 < 60
    return ok


def main(argv=None):
    return run_bench("ai_bench", run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
