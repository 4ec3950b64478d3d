"""Stage names are plain names, and `--fresh` deletes nothing outside run_dir."""

from __future__ import annotations

import os

import pytest

from pipeline.recipe import RecipeError, parse_recipe
from pipeline.runner import RunError, Runner

from .corpus import cli, files, one_line, recipe


def stage(name: str, src) -> dict:
    return {"name": name, "kind": "github_files", "paths": [str(src)], "layout": "repo"}


@pytest.fixture
def src(tmp_path):
    return files(tmp_path / "src", {"a.py": "x = 1\n"})


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../x", "/etc", ".hidden", "a\\b", "a\n", ""])
def test_a_stage_name_that_is_not_a_plain_name_is_refused(name, src):
    with pytest.raises(RecipeError) as e:
        parse_recipe({"name": "t", "run_dir": "/tmp/x", "stages": [stage(name, src)]})
    assert len(e.value.problems) == 1 and ".name: " in e.value.problems[0] and "\n" not in e.value.problems[0]


@pytest.mark.parametrize("name", ["files", "web_v2", "v1.2-final", "_private"])
def test_plain_names_pass(name, src):
    assert parse_recipe({"name": "t", "run_dir": "/tmp/x", "stages": [stage(name, src)]}).stages[0].name == name


def test_fresh_dotdot_is_refused_in_one_line_and_deletes_nothing(tmp_path, src):
    """The attack of the issue: a stage named `..`, then `--fresh ..`, deleted run_dir's parent."""
    keep = tmp_path / "precious.txt"
    keep.write_text("mine")
    rec = recipe(tmp_path / "r.yaml", tmp_path / "run", [stage("..", src)])
    p = cli("run", rec, "--fresh", "..", "--quiet")
    line = one_line(p, 2)
    assert "stages[0].name: " in line and "plain name" in line and keep.read_text() == "mine" and src.exists()


def test_fresh_never_follows_a_stage_directory_linked_out_of_run_dir(tmp_path, src):
    run_dir = tmp_path / "run"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data.txt").write_text("not yours")
    run_dir.mkdir()
    os.symlink(outside, run_dir / "files")
    r = parse_recipe({"name": "t", "run_dir": str(run_dir), "executor": "local", "stages": [stage("files", src)]})
    with pytest.raises(RunError, match="not a directory inside run_dir"):
        Runner(r, progress=False).fresh(["files"])
    assert (outside / "data.txt").read_text() == "not yours"
    # and through the CLI: one line, exit 1
    rec = recipe(tmp_path / "r.yaml", run_dir, [stage("files", src)])
    line = one_line(cli("run", rec, "--fresh", "files", "--quiet"), 1)
    assert "--fresh files" in line and (outside / "data.txt").exists()


def test_fresh_still_deletes_a_real_stage_directory(run_recipe, tmp_path, src):
    run_dir = run_recipe([stage("files", src)])
    r = parse_recipe({"name": "t", "run_dir": run_dir, "executor": "local", "stages": [stage("files", src)]})
    Runner(r, progress=False).fresh(["files"])
    assert not os.path.exists(os.path.join(run_dir, "files")) and os.path.isdir(run_dir)
