"""Shared fixtures: run a recipe given as a dict, on the local executor unless told otherwise."""

from __future__ import annotations

import os

# botocore looks for credentials at the EC2 metadata address when none are set: tests talk to 127.0.0.1 only
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import pyarrow.parquet as pq
import pytest

from pipeline import documents, storage
from pipeline.recipe import parse_recipe
from pipeline.runner import Runner
from pipeline.steps import Step

# the label list and Linguist's samples that the language tests compare against, where ../shared has them
LANGS_SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data", "langs")


class Boom(Step):
    """A step that fails on the first document: for the failure-reporting tests."""

    name = "boom"

    def run(self, data, rank=0, world_size=1):
        for doc in data:
            raise ValueError(f"bad document {doc.id}")
            yield doc


def read_stage(run_dir, stage: str) -> list:
    """All documents a stage wrote, in shard order."""
    docs = []
    for f in storage.list_shards([storage.join(str(run_dir), stage)]):
        with storage.open_file(f, "rb") as fh:
            docs += [documents.from_row(r) for r in pq.read_table(fh).to_pylist()]
    return docs


@pytest.fixture(scope="session")
def s3():
    """moto's S3 server on 127.0.0.1 with a bucket `data`: {endpoint, client, options} (options: a
    recipe's `storage_options`)."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1")
    client.create_bucket(Bucket="data")
    yield {"endpoint": endpoint, "client": client, "options": {"s3": {"endpoint_url": endpoint, "key": "k", "secret": "s"}}}
    server.stop()


@pytest.fixture
def run_recipe(tmp_path):
    """`run_recipe(stages, executor="local", workers=2, seed=0, run_dir=None) -> run_dir`."""

    def _run(stages: list[dict], executor: str = "local", workers: int = 2, seed: int = 0, run_dir=None, only=None):
        run_dir = str(run_dir or tmp_path / "run")
        recipe = parse_recipe({"name": "t", "run_dir": run_dir, "seed": seed, "executor": executor, "stages": stages})
        Runner(recipe, workers=workers, progress=False).run(only)
        return run_dir

    return _run


class KillOnce(Step):
    """Kills the process it runs in (a Ray worker) the first time it runs, as a crashed or preempted
    worker would; later attempts pass documents through."""

    name = "kill once"

    def __init__(self, marker: str):
        super().__init__()
        self.marker = marker

    def run(self, data, rank=0, world_size=1):
        import os
        import signal

        for doc in data:
            if rank == 0 and not os.path.exists(self.marker):
                open(self.marker, "w").close()
                os.kill(os.getpid(), signal.SIGKILL)
            yield doc
