"""Recipe validation: one clear line per problem, naming the file, the key and what was expected."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import TypeAdapter, ValidationError

from pipeline.fields import Ratios
from pipeline.recipe import RecipeError, load_recipe, parse_recipe


def write(tmp_path, text: str):
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


@pytest.fixture
def repos(tmp_path):
    d = tmp_path / "repos" / "r1"
    d.mkdir(parents=True)
    (d / "a.py").write_text("print('hello world')\n")
    return tmp_path / "repos"


def recipe_text(repos, extra_stage: str = "", run_dir="out") -> str:
    return f"""
name: t
run_dir: {run_dir}
stages:
  - name: ingest
    kind: github_files
    paths: ["{repos}"]
{extra_stage}
"""


def problems(path) -> list[str]:
    with pytest.raises(RecipeError) as e:
        load_recipe(path)
    return e.value.problems


def test_valid_recipe_loads(tmp_path, repos):
    r = load_recipe(write(tmp_path, recipe_text(repos)))
    assert [s.name for s in r.stages] == ["ingest"]
    assert r.executor == "ray" and r.workers == 2


def test_typo_key_names_file_and_key(tmp_path, repos):
    p = write(tmp_path, recipe_text(repos, "  - {name: f, kind: basic_filter, input: ingest, min_char: 3}"))
    (line,) = problems(p)
    assert line.startswith(str(p))
    assert "stages.f.min_char: unknown key" in line
    assert "min_chars" in line  # what was expected


def test_wrong_type_and_missing_key(tmp_path, repos):
    p = write(tmp_path, recipe_text(repos, "  - {name: f, kind: basic_filter, input: ingest, min_chars: lots}") + "seed: x\n")
    lines = problems(p)
    assert any("seed:" in line and "integer" in line for line in lines)
    p2 = write(tmp_path, "run_dir: out\nstages: [{name: a, kind: github_files, paths: [x]}]\n")
    assert any("name: missing required key" in line for line in problems(p2))


def test_missing_input_path(tmp_path):
    p = write(tmp_path, recipe_text(tmp_path / "nope"))
    (line,) = problems(p)
    assert "stages.ingest.paths[0]" in line and "does not exist" in line and "nope" in line


def test_unknown_kind_unknown_input_and_duplicates(tmp_path, repos):
    extra = "  - {name: a, kind: frobnicate}\n  - {name: b, kind: basic_filter, input: zzz}\n  - {name: ingest, kind: concat, input: b}"
    lines = problems(write(tmp_path, recipe_text(repos, extra)))
    assert any("stages.a.kind: unknown stage kind 'frobnicate'" in line for line in lines)
    assert any("stages.b.input: unknown stage 'zzz'" in line for line in lines)
    assert any("duplicate stage name 'ingest'" in line for line in lines)


def test_cycle_detected(tmp_path, repos):
    extra = "  - {name: a, kind: basic_filter, input: b}\n  - {name: b, kind: basic_filter, input: a}"
    lines = problems(write(tmp_path, recipe_text(repos, extra)))
    assert lines == [f"{tmp_path / 'r.yaml'}: stages: dependency cycle among a, b"]


def test_bad_yaml_reports_line(tmp_path):
    p = write(tmp_path, "name: t\nstages: [\n  - {\n")
    (line,) = problems(p)
    assert line.startswith(f"{p}: invalid YAML: line ")


def test_bad_fraction(tmp_path, repos):
    lines = problems(write(tmp_path, recipe_text(repos, "  - {name: f, kind: basic_filter, input: ingest, min_alpha_fraction: 1.5}")))
    assert any("stages.f.min_alpha_fraction" in line and "less than or equal to 1" in line for line in lines)


def test_ratios_type():
    ta = TypeAdapter(Ratios)
    assert ta.validate_python({"code": 0.6, "math": 0.1, "natural_language": 0.3})
    with pytest.raises(ValidationError, match="sum to 1"):
        ta.validate_python({"code": 0.6, "math": 0.6})
    with pytest.raises(ValidationError, match=r"\[0, 1\]"):
        ta.validate_python({"code": 1.5, "math": -0.5})


def test_variables_interpolate(tmp_path, repos):
    text = f"name: t\nrun_dir: out\nvars: {{data: '{repos}'}}\nstages:\n  - {{name: i, kind: github_files, paths: ['${{data}}']}}\n"
    r = load_recipe(write(tmp_path, text))
    assert r.stages[0].paths == [str(repos)]
    r2 = load_recipe(write(tmp_path, text.replace("run_dir: out", "run_dir: ${data}/x")), {"data": str(tmp_path)})
    assert r2.run_dir == f"{tmp_path}/x"
    lines = problems(write(tmp_path, text.replace("${data}", "${nodata}")))
    assert "unknown variable ${nodata}" in lines[0]


def test_parse_recipe_rejects_non_mapping():
    with pytest.raises(RecipeError, match="must be a mapping"):
        parse_recipe(["a"], "x.yaml")


def test_cli_exit_2_and_nothing_written(tmp_path, repos):
    run_dir = tmp_path / "out"
    p = write(tmp_path, recipe_text(repos, "  - {name: f, kind: basic_filter, input: ingest, min_char: 3}", run_dir=run_dir))
    r = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", str(p)], capture_output=True, text=True)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "stages.f.min_char: unknown key" in lines[0]
    assert not run_dir.exists()
