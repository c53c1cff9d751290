# One command each: `make demo` (SQLite demo) and `make test` (the whole suite).
.PHONY: demo test test-django61 test-all lint bench soak

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

# Django 6.1: unit and database tests, and the processes tests marked django_line.
test-django61:
	DJANGO=6.1 bash scripts/test.sh -m "not processes or django_line"

# Both supported Django lines, as CI runs them.
test-all:
	bash scripts/test.sh && $(MAKE) test-django61

lint:
	bash scripts/lint.sh

bench:
	bash scripts/bench.sh

# Chaos soak (docs/reliability.md), e.g.
#   make soak DATABASE_URL=postgres://postgres@127.0.0.1:5432/test SOAK_ARGS="--minutes 10 --workers 4"
soak:
	.venv/bin/python scripts/soak.py --database-url "$(or $(DATABASE_URL),sqlite:///)" $(SOAK_ARGS)
