#!/usr/bin/env bash
# Create (or update) the virtualenv for one Django line and print its path.
#   scripts/setup-venv.sh 5.2   -> .venv          (Python 3.11, requirements.txt)
#   scripts/setup-venv.sh 6.1   -> .venv-django61 (Python 3.12+, requirements-django61.txt)
#   scripts/setup-venv.sh demo  -> .venv-demo     (Django only: what the SQLite demo needs)
set -euo pipefail
cd "$(dirname "$0")/.."
django=${1:-5.2}

# The first interpreter that really runs (a pyenv shim may exist and still fail).
find_python() {
  local candidate dir
  for candidate in "$@"; do
    if "$candidate" -c 'import sys' >/dev/null 2>&1; then command -v "$candidate"; return 0; fi
    if command -v pyenv >/dev/null 2>&1; then
      for dir in "$(pyenv root)"/versions/"${candidate#python}"*; do
        if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c 'import sys' >/dev/null 2>&1; then
          echo "$dir/bin/python"; return 0
        fi
      done
    fi
  done
  return 1
}

case "$django" in
  5.2) venv=.venv; requirements=requirements.txt; python=$(find_python python3.11 python3.12 python3.13 python3) ;;
  demo) venv=.venv-demo; requirements=requirements-demo.txt; python=$(find_python python3.11 python3.12 python3.13 python3) ;;
  6.1) venv=.venv-django61; requirements=requirements-django61.txt; python=$(find_python python3.12 python3.13) ;;
  *) echo "unknown Django line '$django' (use 5.2, 6.1 or demo)" >&2; exit 2 ;;
esac
[ -n "$python" ] || { echo "no suitable Python found for Django $django" >&2; exit 1; }

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv" >&2
fi
stamp="$venv/.requirements.sha"
wanted=$(sha256sum "$requirements" pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "Installing $requirements into $venv ..." >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e . >&2
  echo "$wanted" > "$stamp"
fi
echo "$venv"
