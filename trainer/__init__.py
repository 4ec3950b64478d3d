"""A small DeepSeek-V2-style MoE (MLA + DeepSeekMoE) to train on curated shards and compare corpora."""
