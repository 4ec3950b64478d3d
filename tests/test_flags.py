"""One declaration per parameter: a stage kind's spec holds its keys, defaults and limits; steps, the recall
loop and the stand-alone commands' flags derive from it; `--run-dir` moves `${run_dir}` too."""

from __future__ import annotations

import pytest
import yaml

from classifiers.settings import FastTextKeys, Hyper, LoopKeys
from classifiers.stage import Recall
from pipeline.cli import build_parser, main
from pipeline.commands import _vars
from pipeline.github.clone import CloneOptions
from pipeline.github.rules import Thresholds
from pipeline.github.stages import GithubFiles, GithubFilter
from pipeline.recipe import load_recipe
from pipeline.stage import StageContext


def _flags(*command: str) -> set[str]:
    sub = build_parser()._subparsers._group_actions[0].choices[command[0]]
    for c in command[1:]:
        sub = sub._subparsers._group_actions[0].choices[c]
    return {o for a in sub._actions for o in a.option_strings}


def test_the_clone_cap_is_2_gb_everywhere(tmp_path):
    assert CloneOptions().max_bytes == 2_000_000_000
    assert GithubFiles(name="g", kind="github_files", paths=[str(tmp_path)]).clone == CloneOptions()
    assert {"--timeout-s", "--max-bytes", "--blob-limit", "--retries", "--backoff-s", "--workers"} <= _flags("github", "clone")


def test_a_flag_the_spec_refuses_is_one_line(tmp_path, capsys):
    (tmp_path / "list.parquet").write_bytes(b"")
    assert main(["github", "clone", str(tmp_path / "list.parquet"), "--dest", str(tmp_path / "c"), "--blob-limit", "lots"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--blob-limit" in err and "Traceback" not in err


def test_specs_derive_from_the_settings_the_steps_use(tmp_path):
    assert set(Thresholds.model_fields) <= set(GithubFilter.model_fields)
    f = GithubFilter(name="f", kind="github_filter", max_line_length=77)
    (step,) = f.build(StageContext(str(tmp_path), "f", 0))
    assert step.thresholds == Thresholds(max_line_length=77)
    assert set(LoopKeys.model_fields) | set(FastTextKeys.model_fields) <= set(Recall.model_fields)
    assert {"--" + n.replace("_", "-") for n in Hyper.model_fields} <= _flags("classifiers", "train")
    seed = tmp_path / "seed.jsonl"
    seed.write_text('{"text": "x"}\n')
    r = Recall(name="r", kind="recall", input="p", targets={"code": {"seeds": [str(seed)]}}, min_auc=0.6, dim=32)
    cfg = r.loop_config(StageContext(str(tmp_path), "r", 0, input_dirs=[str(tmp_path)]))
    assert cfg.min_auc == 0.6 and cfg.hyper["dim"] == 32 and Hyper(**cfg.hyper).window == FastTextKeys().window


def test_dedup_flags_are_the_kinds_keys():
    assert {"--threshold", "--num-perm", "--bands", "--rows", "--no-verify", "--clusters", "--partitions"} <= _flags("dedup", "near")
    assert "--level" in _flags("dedup", "exact")


def test_run_dir_moves_run_dir_inputs(tmp_path):
    rp = tmp_path / "r.yaml"
    rp.write_text(yaml.safe_dump({"name": "t", "run_dir": str(tmp_path / "old"), "stages": [
        {"name": "f", "kind": "files", "path": "${run_dir}/../data.jsonl"}]}))
    recipe = load_recipe(rp, _vars([], str(tmp_path / "new")))
    assert recipe.run_dir == str(tmp_path / "new") and recipe.raw["run_dir"] == str(tmp_path / "new")
    assert recipe.stage("f").path == f"{tmp_path / 'new'}/../data.jsonl"


@pytest.mark.parametrize("bad", [["--threshold", "2"], ["--bands", "9"]])
def test_dedup_flag_values_are_checked_by_the_spec(tmp_path, capsys, bad):
    (tmp_path / "x.jsonl").write_text('{"text": "a"}\n')
    assert main(["dedup", "near", str(tmp_path / "x.jsonl"), "--output", str(tmp_path / "o"), *bad]) == 2
    assert capsys.readouterr().err.count("\n") == 1
