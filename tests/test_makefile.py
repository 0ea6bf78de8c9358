"""make bench's stage 2 redoes only what is out of date: its plan (``make -n``) over a tree of placeholder files."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STUDENTS = ["cerberus", "kd_mpnet_ce", "kd_sre_ce", "kd_avg", "labels_only"]
SEED_SYSTEMS = ("cerberus", "kd_avg", "mpnet_ce", "mpnet_peer")  # students, a teacher, a peer
SEEDED = [f"{s}-seed{n}" for s in SEED_SYSTEMS for n in (42, 43, 44)]  # 42: the bench's own

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")


def place(wq: Path, level: int, *paths: str) -> None:
    """Create ``paths`` under ``wq``, timestamped ``level`` seconds after a WikiQA config was last written."""
    t = max(p.stat().st_mtime for p in (ROOT / "configs/wikiqa").glob("*.yaml")) + level
    for p in paths:
        (wq / p).parent.mkdir(parents=True, exist_ok=True)
        (wq / p).touch()
        os.utime(wq / p, (t, t))


def make(wq: Path, *args: str) -> list[str]:
    """Run make on targets under ``wq`` (the corpora placeholders beside it, the environment taken as installed);
    returns its output lines."""
    corpora = [f"WIKIQA={wq.parent / 'corpora'}", f"SELQA={wq.parent / 'corpora'}"]
    # a make of its own, not a sub-make of the one running the tests
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    out = subprocess.run(
        ["make", "--no-print-directory", "-o", "install", f"WQ={wq}", *corpora, *args],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [line for line in out.stdout.splitlines() if line.strip() and not line.startswith("make:")]


def plan(wq: Path, *targets: str) -> list[str]:
    """The commands ``make -n`` would run for ``targets``."""
    return make(wq, "-n", *(str(wq / t) for t in targets))


@pytest.fixture
def bench(tmp_path):
    """A bench tree, every output newer than its inputs: WikiQA dev evaluated, seeds evaluated on test."""
    wq = tmp_path / "wq"
    corpora = [f"corpora/WikiQA-{s}.tsv" for s in ("train", "dev", "test")] + ["corpora/SelQA-ass-dev.tsv"]
    place(tmp_path, 0, *corpora)
    place(wq, 1, *(f"data/{s}/as2.json" for s in ("train", "dev", "test", "selqa_dev")))
    place(wq, 2, *(f"teachers/{t}/model/model.safetensors" for t in ("minilm_ce", "sre_ce", "mpnet_ce")))
    place(wq, 2, *(f"peers/{p}/model/config.json" for p in ("minilm_peer", "mpnet_peer")))
    place(wq, 3, "data/dev_scored/as2.json", "data/test_scored/as2.json", "data/dev_peers/as2.json")
    place(wq, 3, "data/test_peers/as2.json", "runs/mpnet_ce.trec", "runs_dev/mpnet_ce.trec")
    place(wq, 3, "runs_peers/test/mpnet_peer.trec", "runs_peers/dev/mpnet_peer.trec")
    (wq / "select").mkdir(parents=True)
    (wq / "select/members.txt").write_text("mpnet_ce sre_ce\n")
    (wq / "select/twin_teacher.txt").write_text("mpnet_ce\n")
    place(wq, 4, "select/members.txt", "select/twin_teacher.txt", "select/ensemble.json")
    place(wq, 5, "data/train_scored/as2.json")
    place(wq, 6, "twin/model/model.safetensors", *(f"students/{s}/model/model.safetensors" for s in STUDENTS))
    for r in SEEDED:
        if not r.endswith("42"):
            place(wq, 6, f"seeds/{r}/model/" + ("config.json" if "peer" in r else "model.safetensors"))
    place(
        wq, 7, "splits/dev/ensemble.trec", "splits/dev/twin.trec", *(f"splits/dev/{s}.trec" for s in STUDENTS)
    )
    place(wq, 7, *(f"pred/{s}.trec" for s in STUDENTS))
    place(wq, 8, *(f"seeds/{split}/{r}.trec" for r in SEEDED for split in ("test", "dev")))
    place(wq, 9, "splits/dev/report.json", "seeds/test/report.json", "seeds/dev/report.json")
    return wq


def test_nothing_to_redo(bench):
    assert plan(bench, "splits/dev/report.json", "seeds/test/report.json") == []


def test_a_result_deleted_by_hand_is_made_again(bench):
    # none of the bench's files is an intermediate that make would skip when missing
    (bench / "splits/dev/kd_avg.trec").unlink()
    (bench / "splits/dev/ensemble.trec").unlink()
    cmds = plan(bench, "splits/dev/report.json")
    assert [c.split("--name ")[1].split()[0] for c in cmds if "--name " in c] == ["ensemble", "kd_avg"]
    assert any("as2.evaluate" in c for c in cmds)


def test_the_bench_leaves_untrained_baselines_to_make_baselines(bench):
    # a clean bench trains only the CERBERUS student: baselines not yet trained are neither trained nor predicted
    for s in STUDENTS[1:]:
        (bench / f"students/{s}/model/model.safetensors").unlink()
        (bench / f"splits/dev/{s}.trec").unlink()
    place(bench, 8, "students/cerberus/model/model.safetensors")
    cmds = plan(bench, "splits/dev/report.json")
    assert [c.split("--name ")[1].split()[0] for c in cmds if "cerberus.predict" in c] == ["cerberus"]
    assert not any("cerberus/train.py" in c for c in cmds)
    evaluate = next(c for c in cmds if "as2.evaluate" in c)
    assert "kd_" not in evaluate and "labels_only" not in evaluate
    # none trained is an empty list (the cost bench then gets no --students, the page no baselines' command)
    assert make(bench, "-n", "--eval", "show: ; echo [$(BASELINES_BUILT)]", "show") == ["echo []"]
    # make baselines: a sub-make that trains each of them, then stage 2 again (which evaluates them beside the
    # student); MAKE=echo prints each sub-make's targets instead of running it
    first, then = [c for c in make(bench, "-n", "MAKE=echo", "baselines") if c.startswith("--no-print")]
    trained = [t.split("/students/")[1].split("/")[0] for t in first.split() if "/students/" in t]
    assert trained == STUDENTS[1:] and then.split()[-1] == "bench-students"


def test_the_bench_leaves_the_inference_benches_to_make_inference_bench(bench):
    # the test split evaluated and the models timed, no inference bench written: nothing to do, none planned
    place(bench, 3, *(f"runs/{t}.trec" for t in ("minilm_ce", "sre_ce", "minilm_bi", "mpnet_bi")))
    place(bench, 5, "runs/ensemble.trec")
    place(
        bench,
        7,
        "pred/twin.trec",
        "pred/cascade.trec",
        "pred/cerberus.mpnet_ce.trec",
        "pred/cerberus.sre_ce.trec",
    )
    place(bench, 9, "eval/report.json", "bench/bench.json")
    assert plan(bench, "eval/report.json", "bench/bench.json") == []
    assert make(bench, "-n", "--eval", "show: ; echo [$(INFERENCE_BUILT)]", "show") == ["echo []"]
    page = [c for c in make(bench, "-n", "results-page") if "as2.results" in c][0]
    assert (
        "--twin_bench" not in page
        and "--adaptive" not in page
        and '--command "make bench; make baselines"' in page
    )
    # make inference-bench: a sub-make that writes them, then stage 2 again (MAKE=echo prints the targets)
    first, then = [c for c in make(bench, "-n", "MAKE=echo", "inference-bench") if c.startswith("--no-print")]
    written = sorted(t.split(str(bench) + "/")[1] for t in first.split()[1:])
    precisions = [f"pred/cerberus_{p}.trec" for p in ("fp32", "int8", "onnx", "onnx_int8")]
    assert written == sorted([*precisions, "adaptive/adaptive.json", "twin_bench/bench.json"])
    assert then.split()[-1] == "bench-students"
    # once written, the evaluation takes the precisions' runs and the page the benches, and the cost bench is not
    # run again for a new run to evaluate
    place(bench, 10, *precisions, "adaptive/adaptive.json", "twin_bench/bench.json")
    cmds = plan(bench, "eval/report.json", "bench/bench.json")
    assert (
        len(cmds) == 1
        and "as2.evaluate" in cmds[0]
        and str(bench / "pred/cerberus_onnx_int8.trec") in cmds[0]
    )
    page = [c for c in make(bench, "-n", "results-page") if "as2.results" in c][0]
    assert (
        f"--twin_bench {bench}/twin_bench/bench.json" in page
        and f"--adaptive {bench}/adaptive/adaptive.json" in page
    )
    assert '--command "make bench; make baselines; make inference-bench"' in page
    # a retrained student: its predictions at every precision and its adaptive heads are made again
    place(bench, 11, "students/cerberus/model/model.safetensors")
    remade = plan(bench, "eval/report.json", "adaptive/adaptive.json")
    assert sum("--precision" in c for c in remade) == 4  # a command's second line
    assert any("cerberus.adaptive" in c for c in remade)


def test_one_changed_student_is_predicted_again_alone(bench):
    place(bench, 8, "students/kd_avg/model/model.safetensors")
    cmds = plan(bench, "splits/dev/report.json")
    predicted = [c for c in cmds if "cerberus.predict" in c]
    assert len(predicted) == 1 and "--name kd_avg " in predicted[0] + " "
    assert any("as2.evaluate" in c for c in cmds)


def test_the_bench_seed_reuses_the_bench_run(bench):
    # a new bench student: the seed report renames its test run, and predicts only the seeds trained apart
    place(bench, 10, "pred/cerberus.trec")
    cmds = plan(bench, "seeds/test/report.json")
    assert not any("cerberus.predict" in c for c in cmds)
    assert any("cerberus-seed42" in c and str(bench / "pred/cerberus.trec") in c for c in cmds)
    place(bench, 11, "seeds/cerberus-seed43/model/model.safetensors")
    predicted = [c for c in plan(bench, "seeds/test/report.json") if "cerberus.predict" in c]
    assert len(predicted) == 1 and "--name cerberus-seed43 " in predicted[0] + " "


def test_the_bench_seed_on_dev_is_the_bench_dev_run(bench):
    place(bench, 10, "splits/dev/kd_avg.trec")
    cmds = plan(bench, "seeds/dev/report.json")
    assert any("kd_avg-seed42" in c and str(bench / "splits/dev/kd_avg.trec") in c for c in cmds)
    assert not any("cerberus.predict" in c for c in cmds)


def test_each_student_trains_on_its_own_recipe(bench):
    place(bench, 10, "data/train_scored/as2.json")  # new teacher scores: every student is trained again
    cmds = " ".join(plan(bench, *(f"students/{s}/model/model.safetensors" for s in STUDENTS))).split(
        "cerberus/train.py"
    )
    args = {c.split("--output_dir ")[1].split()[0].rsplit("/", 1)[1]: c for c in cmds[1:]}
    assert set(args) == set(STUDENTS)
    for kd in ("kd_mpnet_ce", "kd_sre_ce", "kd_avg"):  # the KD baselines: alpha 0.3, no combined term
        assert "--alpha 0.3 --fused_weight 0" in args[kd] and "--body_layers 5 --head_layers 1" in args[kd]
    assert "--heads kd_avg=mpnet_ce+sre_ce" in args["kd_avg"]
    assert "--alpha 1 --fused_weight 0" in args["labels_only"] and "--alpha 0.3" not in args["labels_only"]
    assert "--alpha" not in args["cerberus"] and "--heads mpnet_ce sre_ce --head_weights" in args["cerberus"]
    # a seed of a single-teacher KD baseline trains that baseline, not the config's CERBERUS student
    seeded = make(
        bench,
        "-n",
        "SEED_SYSTEMS=kd_mpnet_ce",
        str(bench / "seeds/kd_mpnet_ce-seed43/model/model.safetensors"),
    )
    assert (
        "--heads mpnet_ce --body_layers 5 --head_layers 1 --alpha 0.3 --fused_weight 0 --seed 43"
        in " ".join(seeded)
    )


def test_the_renamed_run_names_its_seed(bench):
    run = bench / "pred/cerberus.trec"
    run.write_text("Q1 Q0 D1-0 1 0.9 cerberus\nQ1 Q0 D1-1 2 0.1 cerberus\n")
    place(bench, 10, "pred/cerberus.trec")  # newer than the seed's run: renamed again
    make(bench, str(bench / "seeds/test/cerberus-seed42.trec"))
    lines = (bench / "seeds/test/cerberus-seed42.trec").read_text().splitlines()
    assert lines == ["Q1 Q0 D1-0 1 0.9 cerberus-seed42", "Q1 Q0 D1-1 2 0.1 cerberus-seed42"]


def test_seeds_of_a_teacher_and_a_peer(bench):
    # each trained by its own kind's command with the seed: the teacher's recipe without a launcher, the
    # library's trainer for the peer
    (bench / "seeds/mpnet_ce-seed43/model/model.safetensors").unlink()
    (bench / "seeds/mpnet_peer-seed44/model/config.json").unlink()
    cmds = plan(
        bench, "seeds/mpnet_ce-seed43/model/model.safetensors", "seeds/mpnet_peer-seed44/model/config.json"
    )
    assert len(cmds) == 2
    teacher, peer = cmds
    assert teacher.startswith(".venv/bin/python cerberus/train.py --config configs/wikiqa/teacher.yaml")
    assert "--heads mpnet_ce " in teacher and "--body_layers 11" in teacher and teacher.endswith("--seed 43")
    assert "cerberus.peer" in peer and "mpnet-base" in peer and peer.endswith("--seed 44")
    assert str(bench / "seeds/mpnet_peer-seed44") in peer
    # a new teacher seed is predicted like a student; a new peer seed is scored like the peers, under its run name
    place(
        bench,
        11,
        "seeds/mpnet_ce-seed43/model/model.safetensors",
        "seeds/mpnet_peer-seed44/model/config.json",
    )
    cmds = plan(bench, "seeds/test/report.json")
    predicted = [c for c in cmds if "cerberus.predict" in c]
    assert len(predicted) == 1 and "--name mpnet_ce-seed43 " in predicted[0] + " "
    scored = [c for c in cmds if "data_prep.teacher_scores" in c]
    assert len(scored) == 1 and "--config configs/wikiqa/peers.yaml" in scored[0]
    assert (
        '{"mpnet_peer-seed44": {"kind": "cross-encoder", "path": "%s"}}'
        % (bench / "seeds/mpnet_peer-seed44/model")
        in scored[0]
    )


def test_the_bench_seed_of_a_teacher_and_a_peer_is_their_bench_run(bench):
    # new peer scores of test, and the teacher's seed-42 run deleted: those runs are the bench's renamed,
    # nothing is scored
    place(bench, 10, "data/test_peers/as2.json")
    (bench / "seeds/test/mpnet_ce-seed42.trec").unlink()
    cmds = plan(bench, "seeds/test/report.json")
    assert not any("cerberus.predict" in c or "teacher_scores" in c or "train" in c for c in cmds)
    renamed = {c.split('"')[1]: c for c in cmds if c.startswith("awk")}  # run name -> command
    assert set(renamed) == {"mpnet_ce-seed42", "mpnet_peer-seed42"}
    assert str(bench / "runs/mpnet_ce.trec") in renamed["mpnet_ce-seed42"]
    assert str(bench / "runs_peers/test/mpnet_peer.trec") in renamed["mpnet_peer-seed42"]
    assert plan(bench, "seeds/dev/report.json") == []  # the dev runs were not scored again


def test_the_bench_seed_of_each_kind_is_its_own_default():
    import re

    from cerberus.peer import PeerConfig

    text = (ROOT / "Makefile").read_text()
    assert re.search(r"^BENCH_SEED_peer +:= (\d+)$", text, re.M)[1] == str(
        PeerConfig.__dataclass_fields__["seed"].default
    )
