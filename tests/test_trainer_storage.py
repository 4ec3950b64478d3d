"""Training, resume, eval and convert with data and `out_dir` on S3 (a moto server on 127.0.0.1), started from a
read-only working directory: the same losses as a local run, every file in the bucket, nothing written locally."""

from __future__ import annotations

import csv
import io
import json
import os

import fsspec
import pytest
import torch

from pipeline import storage
from pipeline.cli import main
from tests.test_trainer_ablate import code_doc, tiny_config, web_doc, write_stage  # noqa: F401  (tiny_config: a fixture)
from tests.test_trainer_train import config_file, losses, shards  # noqa: F401  (shards: a fixture)
from trainer.config import load_config
from trainer.train import load_model, train


@pytest.fixture
def bucket(s3):
    """The moto bucket `data`, with its endpoint and credentials set for this process as a user's recipe would."""
    env = storage.configure(s3["options"])
    yield s3["client"]
    for k in env:
        os.environ.pop(k, None)
    fsspec.config.conf.pop("s3", None)
    fsspec.AbstractFileSystem.clear_instance_cache()


def keys(client, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket="data", Prefix=prefix).get("Contents", []))


def test_train_resume_eval_convert_on_s3(tmp_path, shards, bucket, monkeypatch, capsys):  # noqa: F811
    for name in sorted(os.listdir(shards)):
        bucket.upload_file(os.path.join(shards, name), "data", f"shards/{name}")
    cfg_path = config_file(tmp_path, "s3://data/shards")
    local = load_config(cfg_path, {"train.out_dir": str(tmp_path / "local")})
    train(local, quiet=True)

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    cwd.chmod(0o555)  # read-only (unless root); the listdir check at the end catches any write there
    try:
        remote = load_config(cfg_path, {"train.out_dir": "s3://data/run"})
        train(remote, stop_at=3, quiet=True)  # as if killed after the step-3 checkpoint
        assert "run/ckpt.pt" in keys(bucket, "run/") and "run/log.csv" in keys(bucket, "run/")
        assert main(["train", cfg_path, "--out", "s3://data/run"]) == 0
        assert "resumed from s3://data/run/ckpt.pt at step 3" in capsys.readouterr().out
        log = bucket.get_object(Bucket="data", Key="run/log.csv")["Body"].read().decode()
        assert [r["loss"] for r in csv.DictReader(io.StringIO(log))] == losses(tmp_path / "local")
        assert any(k.startswith("run/tb/events.out.tfevents") for k in keys(bucket, "run/tb/"))
        a, trained_cfg = load_model("s3://data/run")
        b, _ = load_model(str(tmp_path / "local"))
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))

        assert main(["eval", "s3://data/run", "--no-humaneval", "--fim", "0", "--reference-text", "none",
                     "--heldout", "s3://data/shards"]) == 0
        ev = json.loads(capsys.readouterr().out)
        assert ev["checkpoint"] == "s3://data/run" and ev["heldout"]["overall"]["tokens"] > 0

        pytest.importorskip("transformers")
        assert main(["convert", "s3://data/run", "s3://data/hf"]) == 0
        assert {"hf/config.json", "hf/codecurate.json"} <= set(keys(bucket, "hf/"))
        assert main(["convert", "s3://data/hf", "s3://data/back.pt"]) == 0
        back, cfg = load_model("s3://data/back.pt")
        assert cfg.to_dict() == trained_cfg.to_dict()
        assert all(torch.equal(x, y) for x, y in zip(back.state_dict().values(), a.state_dict().values()))
        assert main(["convert", "s3://data/run", "s3://data/hf"]) == 2  # exists, no --force
    finally:
        cwd.chmod(0o755)
    assert os.listdir(cwd) == []  # no junk ./s3:/... directory


def test_ablate_with_corpora_and_out_on_s3(tmp_path, tiny_config, bucket, monkeypatch, capsys):  # noqa: F811
    for name, docs in {"code": [code_doc(i) for i in range(40)], "web": [web_doc(i) for i in range(20)]}.items():
        write_stage(tmp_path / name, docs)
        bucket.upload_file(str(tmp_path / name / "part-00000.parquet"), "data", f"raw/{name}/part-00000.parquet")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    args = ["ablate", "--corpus", "raw=s3://data/raw/code,s3://data/raw/web", "--train", tiny_config, "--tokens", "256",
            "--out", "s3://data/abl", "--no-humaneval", "--fim", "0", "--reference-text", "none", "--eval-docs", "2"]
    assert main(args) == 0
    assert "loss curves: s3://data/abl/loss_curves.png" in capsys.readouterr().out
    got = set(keys(bucket, "abl/"))
    assert {"abl/ablation.json", "abl/ablation.md", "abl/loss_curves.png", "abl/tokens/raw/manifest.json",
            "abl/tokens/raw/tokens-00000.bin", "abl/tokens/raw/tokens-00000.idx", "abl/tokens/raw/part-00000.parquet",
            "abl/raw/seed-0/ckpt.pt", "abl/raw/seed-0/log.csv", "abl/raw/seed-0/corpus.sha256"} <= got
    assert bucket.get_object(Bucket="data", Key="abl/loss_curves.png")["Body"].read()[:4] == b"\x89PNG"
    abl = json.loads(bucket.get_object(Bucket="data", Key="abl/ablation.json")["Body"].read())
    assert abl["results"]["raw"]["seeds"][0]["tokens"] == 256

    # scoring again reuses the tokenised corpus and the finished checkpoint
    written = ("abl/raw/seed-0/ckpt.pt", "abl/tokens/raw/tokens-00000.bin")
    stamp = [bucket.head_object(Bucket="data", Key=k)["LastModified"] for k in written]
    assert main(args) == 0
    assert [bucket.head_object(Bucket="data", Key=k)["LastModified"] for k in written] == stamp
    again = json.loads(bucket.get_object(Bucket="data", Key="abl/ablation.json")["Body"].read())
    assert again["results"]["raw"]["seeds"][0]["final_train_loss"] == abl["results"]["raw"]["seeds"][0]["final_train_loss"]
    assert os.listdir(cwd) == []
