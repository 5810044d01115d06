# markless — see README.md. Every target that runs code installs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
STAMP  := $(VENV)/.installed

.PHONY: install serve test test-slow lint format bench assets train ray-serve clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,train]'
	# A venv made before the contrib OpenCV build was required still has the plain one, which shares
	# the cv2 package: remove it and lay the required build down again.
	if $(BIN)/python -m pip show --quiet opencv-python-headless 2>/dev/null; then \
	  $(BIN)/python -m pip uninstall --quiet --yes opencv-python-headless && \
	  $(BIN)/python -m pip install --quiet --force-reinstall --no-deps "$$($(BIN)/python -c \
	    "import importlib.metadata as m; print(next(r for r in m.requires('markless') if r.startswith('opencv')))")"; \
	fi
	touch $(STAMP)

serve: install
	$(BIN)/markless serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/markless bench -o bench.json

assets: install
	$(BIN)/markless assets

ray-serve: install
	$(BIN)/python -c "import ray.serve" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[dev,train,ray]'
	$(BIN)/python -m app.ray_serve --host $(HOST) --port $(PORT) --num-gpus 0

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
