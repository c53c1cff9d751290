# One command each: `make demo` (SQLite demo) and `make test` (the whole suite).
.PHONY: demo test test-all lint bench

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

# Both supported Django lines, as CI runs them.
test-all:
	bash scripts/test.sh && DJANGO=6.1 bash scripts/test.sh

lint:
	bash scripts/lint.sh

bench:
	bash scripts/bench.sh
