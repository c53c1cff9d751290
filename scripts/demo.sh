#!/usr/bin/env bash
# Set up a virtualenv and run the demo on SQLite: enqueue, work, print.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(scripts/setup-venv.sh demo)
"$venv/bin/python" example/run_demo.py
