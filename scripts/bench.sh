#!/usr/bin/env bash
# The benchmark (see docs/benchmarks.md): ours side by side with django-db-queue 3.3.0,
# Procrastinate and a pgbench claim cycle. Extra arguments go to bench/run.py (e.g. --quick).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(scripts/setup-venv.sh 5.2)
"$venv/bin/python" bench/run.py "$@"
