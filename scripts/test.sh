#!/usr/bin/env bash
# Set up and run the whole test suite on SQLite, PostgreSQL and MariaDB.
#
#   scripts/test.sh                     # Django 5.2, all three databases
#   DJANGO=6.1 scripts/test.sh          # Django 6.1
#   DBS="sqlite" scripts/test.sh -k worker   # one database, extra pytest arguments
#   DBS="sqlite" scripts/test.sh tests/unit  # one kind: tests/unit, tests/databases or
#                                            # tests/processes (the same as -m unit/database/processes)
#
# PostgreSQL and MariaDB URLs default to the local servers; override with
# POSTGRES_URL / MYSQL_URL. With CI set, an unreachable database fails the run.
set -uo pipefail
cd "$(dirname "$0")/.."
django=${DJANGO:-5.2}
dbs=${DBS:-sqlite postgres mariadb}
postgres_url=${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
mysql_url=${MYSQL_URL:-mysql://root@127.0.0.1:3306/test}

# Every worker subprocess imports the project's modules: compiled once and kept (an
# environment that sets PYTHONDONTWRITEBYTECODE would have each start compile them again).
unset PYTHONDONTWRITEBYTECODE

venv=$(scripts/setup-venv.sh "$django") || exit 1
python="$venv/bin/python"
suffix="_dj${django/./}"
mkdir -p var/test-logs

echo "== Django $django: migrations are up to date"
"$python" manage.py makemigrations --check --dry-run django_dbq || exit 1

url_for() {
  case "$1" in
    sqlite) echo "sqlite:///$PWD/var/dbq${suffix}.sqlite3" ;;
    postgres) echo "$postgres_url" ;;
    mariadb) echo "$mysql_url" ;;
    *) echo "unknown database '$1'" >&2; return 1 ;;
  esac
}

reachable() {
  DATABASE_URL=$1 "$python" - <<'PY'
import os, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testsettings")
django.setup()
from django.db import connection
try:
    connection.ensure_connection()
except Exception as error:
    print(f"   cannot connect: {error}", file=sys.stderr)
    sys.exit(1)
PY
}

# The databases run side by side: each is its own server, so a fault test that
# restarts PostgreSQL does not touch the MariaDB run.
declare -A pids logs
status=0
for db in $dbs; do
  url=$(url_for "$db") || exit 2
  if ! reachable "$url"; then
    if [ -n "${CI:-}" ]; then echo "FAIL: $db is unreachable at $url"; status=1; continue; fi
    echo "SKIP: $db is unreachable at $url (set CI=1 to make this an error)"; continue
  fi
  logs[$db]="var/test-logs/${db}${suffix}.log"
  echo "== Django $django on $db: pytest (log: ${logs[$db]})"
  # A caller's DBQ_TEST_DB_SUFFIX is kept, so runs that share the servers use their own databases.
  DATABASE_URL=$url DBQ_TEST_DB_SUFFIX=${DBQ_TEST_DB_SUFFIX:-}$suffix "$python" -m pytest -p no:cacheprovider "$@" \
    > "${logs[$db]}" 2>&1 &
  pids[$db]=$!
done

passed=0; failed=0
for db in "${!pids[@]}"; do
  wait "${pids[$db]}"; code=$?
  echo "---------- Django $django on $db (exit $code) ----------"
  tail -n 60 "${logs[$db]}"
  counts=$(tail -n 1 "${logs[$db]}")
  p=$(grep -oE '[0-9]+ passed' <<<"$counts" | grep -oE '[0-9]+' || echo 0)
  f=$(grep -oE '[0-9]+ (failed|error|errors)' <<<"$counts" | awk '{s += $1} END {print s + 0}')
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
  if [ "$code" -ne 0 ]; then status=1; [ "${f:-0}" -eq 0 ] && failed=$((failed + 1)); fi
done
echo "Django $django: $passed passed, $failed failed"
exit $status
