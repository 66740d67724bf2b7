"""Latency of one symptom-checker assessment (the model call alone: encoding, two models, red flags).

Run from the repository root:  .venv/bin/python bench/ai_bench.py [--calls 2000]

It loads the active shipped model in-process (no server, no database) and times `pawmanity.services.triage.assess`
over a mix of realistic symptom lists for people, dogs and cats, after a warm-up. Target (issue 6): model call p99
under 20 ms. The end-to-end POST /ai/diagnoses figure comes with that endpoint.
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CASES = [
    ("human", ["nasal_discharge", "sneezing", "sore_throat"]),
    ("human", ["chest_pain", "sweating", "nausea"]),
    ("human", ["fever", "cough", "muscle_aches", "fatigue", "headache"]),
    ("dog", ["vomiting", "diarrhea", "lethargy"]),
    ("dog", ["unproductive_retching", "distended_abdomen", "restlessness"]),
    ("cat", ["increased_thirst", "weight_loss", "frequent_urination"]),
    ("cat", ["sneezing", "eye_discharge", "nasal_discharge"]),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    os.environ.setdefault("PAWMANITY_INSTANCE_DIR", tempfile.mkdtemp(prefix="pawmanity-ai-bench-"))
    from pawmanity import create_app
    from pawmanity.services.triage import assess

    app = create_app("development", plugins=())
    rng = random.Random(1)
    with app.app_context():
        for species, codes in CASES * 20:  # warm-up: loads the artefact once
            assess(species, _symptoms(rng, codes), age_years=6, sex="female")
        timings = []
        for n in range(args.calls):
            species, codes = CASES[n % len(CASES)]
            started = time.perf_counter()
            assess(species, _symptoms(rng, codes), age_years=rng.uniform(1, 80), sex=rng.choice(("female", "male")))
            timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p50, p99 = statistics.median(timings), timings[int(len(timings) * 0.99) - 1]
    print(f"assessments: {args.calls}  p50 {p50:.2f} ms  p99 {p99:.2f} ms  max {timings[-1]:.2f} ms")
    print(f"target model call p99 < 20 ms: {'PASS' if p99 < 20 else 'NOT MET'}")
    return 0 if p99 < 20 else 1


def _symptoms(rng, codes):
    return [{"code": code, "severity": rng.randint(1, 10), "duration_days": rng.uniform(0.1, 10)} for code in codes]


if __name__ == "__main__":
    sys.exit(main())
