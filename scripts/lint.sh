#!/usr/bin/env bash
# ruff lint and format check, and the import walls (configuration in pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(scripts/setup-venv.sh 5.2)
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .
# The import contracts ([tool.importlinter]): engines know nothing of workers, no cycles...
"$venv/bin/lint-imports" --no-cache
