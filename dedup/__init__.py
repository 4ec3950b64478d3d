"""Exact and MinHash near-duplicate removal, as multi-phase stages that scale out by task rank.

- `shingles`: regex tokens and vectorised n-gram shingle hashes (code-aware, no spaCy);
- `minhash`: datasketch-compatible MinHash signatures over whole batches, LSH band keys;
- `keys`: xxh3-128 content keys with optional normalisation, URL keys;
- `keep`: which document of a cluster survives;
- `work`, `shards`, `phase`: refs, partitioned intermediate files, the input cut into per-task pieces;
- `steps` (signatures, buckets, verification), `graph` (distributed connected components),
  `decide` (exact keys, kept documents, summary, applying the drops), `stages`: the
  `dedup_exact` / `dedup_near` / `dedup_url` kinds;
- `cli`: `codecurate dedup exact|near`.
"""
