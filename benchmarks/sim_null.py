"""Null and planted-effect simulations of both studies' tests (radfair.studies.null_simulations) for docs/intervals.md.

Usage: python benchmarks/sim_null.py [--studies 200] [--out sim_null.json]
"""

import argparse
import json
import time

from radfair.studies.null_simulations import study1_null, study2_null

parser = argparse.ArgumentParser()
parser.add_argument("--studies", type=int, default=200)
parser.add_argument("--out", default="sim_null.json")
args = parser.parse_args()
results = []
settings = [
    ("study2", {"planted": 0.0}), ("study2", {"planted": 0.0, "baseline": 0.1}),
    ("study2", {"planted": 0.05, "baseline": 0.1}), ("study2", {"planted": 0.10, "baseline": 0.1}),
    ("study2", {"planted": 0.05, "baseline": 0.1, "n_patients": 6000}),
    ("study2", {"planted": 0.0, "p_value": "bootstrap-count"}),
    ("study1", {}), ("study1", {"mu": (0.75, 0.75)}),
]
for which, kw in settings:
    start = time.perf_counter()
    result = (study2_null if which == "study2" else study1_null)(args.studies, **kw)
    result |= {"simulation": which, "seconds": round(time.perf_counter() - start, 1)}
    print(json.dumps(result), flush=True)
    results.append(result)
with open(args.out, "w") as f:
    json.dump(results, f, indent=1)
