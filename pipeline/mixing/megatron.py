"""Megatron-LM indexed datasets (`.bin` + `.idx`, format "MMIDIDX"), written and read here.

Layout of `PREFIX.idx` (little endian), as in megatron/core/datasets/indexed_dataset.py:

    b"MMIDIDX\\x00\\x00"    magic, 9 bytes
    u64 version = 1
    u8  dtype code         1 uint8, 2 int8, 3 int16, 4 int32, 5 int64, 6 float64, 7 float32, 8 uint16
    u64 sequence count N
    u64 document count D   (entries of doc_idx, = N + 1 here)
    i32[N] sizes           tokens per sequence
    i64[N] pointers        byte offset of each sequence in PREFIX.bin
    i64[D] doc_idx         sequence index where each document starts (0, 1, ..., N)

`PREFIX.bin` holds the tokens back to back. Every document is one sequence.

Megatron has no uint32 code. Token ids are written as uint32 bytes under code 4 (int32): for
ids below 2**31 (every vocabulary here) the bytes are identical, so Megatron's `IndexedDataset`
reads the same ids as int32, and ours reads code 4 as uint32.
"""

from __future__ import annotations

import contextlib
import os
import struct
import weakref
from collections.abc import Sequence

import numpy as np

from pipeline import storage

MAGIC = b"MMIDIDX\x00\x00"
VERSION = 1
_CODES = {
    np.dtype(np.uint8): 1,
    np.dtype(np.int8): 2,
    np.dtype(np.int16): 3,
    np.dtype(np.int32): 4,
    np.dtype(np.uint32): 4,  # written as int32 bytes (see module docstring)
    np.dtype(np.int64): 5,
    np.dtype(np.float64): 6,
    np.dtype(np.float32): 7,
    np.dtype(np.uint16): 8,
}
_READ = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.uint32, 5: np.int64, 6: np.float64, 7: np.float32, 8: np.uint16}


class IndexedDatasetWriter:
    """Appends documents to the local file `PREFIX.bin`; `finalize()` writes `PREFIX.idx`. (For a
    remote destination, write in `pipeline.storage.scratch()` and `upload` both files.)

    Both files are written atomically (`storage.atomic_open`), the index last, so an interrupted
    writer never leaves a dataset that looks complete.
    """

    def __init__(self, path_prefix: str, dtype=np.uint32):
        self.path_prefix = str(path_prefix)
        self.dtype = np.dtype(dtype)
        if self.dtype not in _CODES:
            raise ValueError(f"unsupported dtype {self.dtype} (expected one of {sorted(map(str, _CODES))})")
        self._files = contextlib.ExitStack()
        self._bin = self._files.enter_context(storage.atomic_open(self.path_prefix + ".bin", "wb"))
        self._sizes: list[int] = []
        self._done = False

    def add_document(self, tokens: Sequence[int] | np.ndarray) -> None:
        arr = np.asarray(tokens, dtype=self.dtype)
        if arr.ndim != 1:
            raise ValueError("a document is a 1-d sequence of token ids")
        self._bin.write(arr.tobytes(order="C"))
        self._sizes.append(int(arr.size))

    def finalize(self) -> None:
        if self._done:
            return
        self._done = True
        self._files.close()  # the .bin is complete
        sizes = np.asarray(self._sizes, dtype=np.int32)
        pointers = np.zeros(len(sizes), dtype=np.int64)
        if len(sizes) > 1:
            np.cumsum(sizes[:-1].astype(np.int64) * self.dtype.itemsize, out=pointers[1:])
        doc_idx = np.arange(len(sizes) + 1, dtype=np.int64)
        with storage.atomic_open(self.path_prefix + ".idx", "wb") as f:
            f.write(MAGIC)
            f.write(struct.pack("<Q", VERSION))
            f.write(struct.pack("<B", _CODES[self.dtype]))
            f.write(struct.pack("<Q", len(sizes)))
            f.write(struct.pack("<Q", len(doc_idx)))
            f.write(sizes.tobytes(order="C"))
            f.write(pointers.tobytes(order="C"))
            f.write(doc_idx.tobytes(order="C"))

    def __enter__(self) -> IndexedDatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finalize()
        else:
            self._files.__exit__(exc_type, exc, tb)  # the partial .bin is removed


class IndexedDataset:
    """Reads an MMIDIDX dataset; `ds[i]` is document i's tokens, memory-mapped (no copy).

    `path_prefix` may be any fsspec path: a remote dataset is copied to node-local scratch
    (`pipeline.storage.local_copy`) and the copy removed by `close()` or when the object is collected.
    """

    def __init__(self, path_prefix: str):
        self.path_prefix = str(path_prefix)
        files = contextlib.ExitStack()
        self._close = weakref.finalize(self, files.close)
        idx_path = files.enter_context(storage.local_copy(self.path_prefix + ".idx"))
        with open(idx_path, "rb") as f:
            head = f.read(len(MAGIC) + 8 + 1 + 8 + 8)
        if len(head) < 34 or head[: len(MAGIC)] != MAGIC:
            self.close()
            raise ValueError(f"{self.path_prefix}.idx: not a Megatron MMIDIDX index")
        version, code, n, d = struct.unpack("<QBQQ", head[len(MAGIC):])
        if version != VERSION or code not in _READ:
            self.close()
            raise ValueError(f"{self.path_prefix}.idx: unsupported version {version} or dtype code {code}")
        self.dtype = np.dtype(_READ[code])
        off = len(head)
        idx = np.memmap(idx_path, mode="r", dtype=np.uint8) if os.path.getsize(idx_path) else np.zeros(0, np.uint8)
        self.sizes = np.frombuffer(idx, dtype=np.int32, count=n, offset=off)
        self.pointers = np.frombuffer(idx, dtype=np.int64, count=n, offset=off + 4 * n)
        self.doc_idx = np.frombuffer(idx, dtype=np.int64, count=d, offset=off + 12 * n)
        bin_path = files.enter_context(storage.local_copy(self.path_prefix + ".bin"))
        nbytes = os.path.getsize(bin_path)
        self._bin = np.memmap(bin_path, mode="r", dtype=np.uint8) if nbytes else np.zeros(0, np.uint8)

    def close(self) -> None:
        """Removes the scratch copy of a remote dataset (arrays already handed out stay readable)."""
        self._close()

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, i: int) -> np.ndarray:
        if not -len(self) <= i < len(self):
            raise IndexError(f"document {i} out of range ({len(self)} documents)")
        i = int(i) % len(self)
        return np.frombuffer(self._bin, dtype=self.dtype, count=int(self.sizes[i]), offset=int(self.pointers[i]))

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    @property
    def num_tokens(self) -> int:
        return int(self.sizes.sum(dtype=np.int64))
