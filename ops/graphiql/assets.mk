# GraphiQL assets served by our own server (no CDN). Included from the Makefile.
# `make assets` rebuilds app/static/graphiql when its manifest is missing or older than
# the pinned npm packages or the build script; ops/graphiql/build.py does the work.

GRAPHIQL_SRC := ops/graphiql
GRAPHIQL_MANIFEST := app/static/graphiql/manifest.json
GRAPHIQL_PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)

.PHONY: assets assets-force

assets: $(GRAPHIQL_MANIFEST)

$(GRAPHIQL_MANIFEST): $(GRAPHIQL_SRC)/package-lock.json $(GRAPHIQL_SRC)/package.json $(GRAPHIQL_SRC)/build.py
	$(GRAPHIQL_PYTHON) $(GRAPHIQL_SRC)/build.py

assets-force:
	$(GRAPHIQL_PYTHON) $(GRAPHIQL_SRC)/build.py --force
