"""as2.runs: the TREC file format (as ranx writes and reads it) and the fixed-width id stand-ins for ranx."""

from __future__ import annotations

from ranx import Run

from as2.runs import ID_WIDTH, decode_ids, encode_ids, id_codes, read_run, write_run

RUN = {"q2": {"b": 0.5, "a": 0.5, "c": 2.0}, "q10": {"x": -1.0}, "q3": {}}


def test_written_runs_read_back_and_ranx_reads_them_alike(tmp_path):
    """Bugs caught: a rank column out of score order, input-order ties, a missing final newline
    (``wc -l`` one line short), a file ranx parses differently."""
    path = write_run(tmp_path / "r.trec", RUN, "sys")
    text = path.read_text()
    assert text.endswith("\n") and text.count("\n") == 4
    assert text.splitlines() == [
        "q10 Q0 x 1 -1.0 sys",
        "q2 Q0 c 1 2.0 sys",
        "q2 Q0 a 2 0.5 sys",  # equal scores: by candidate id
        "q2 Q0 b 3 0.5 sys",
    ]
    name, back = read_run(path)
    assert name == "sys" and back == {q: c for q, c in RUN.items() if c}
    assert Run.from_file(str(path), kind="trec").to_dict() == back


def test_id_stand_ins_have_one_width_and_round_trip():
    """Bug caught: stand-ins of varying width (ranx would compile its kernels again per corpus)."""
    codes = id_codes({q: list(c) for q, c in RUN.items()})
    coded = encode_ids(RUN, codes)
    ids = list(coded) + [c for cands in coded.values() for c in cands]
    assert {len(i) for i in ids} == {ID_WIDTH} and len(set(coded)) == len(RUN)
    assert decode_ids(coded, codes) == RUN
