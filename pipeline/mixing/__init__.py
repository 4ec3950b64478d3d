"""From curated documents to what a trainer reads: mix, FIM, tokenized shards.

- `mix` (the stage), `mixplan` (copies per document), `split` (windows of oversized documents);
- `fim`: the `fim` stage (the FIM format itself is `tokenizer.fim`);
- `shards`: the `tokenize_shards` stage; `megatron`: Megatron-LM `.bin/.idx` files, written and read.
"""
