"""From curated documents to what a trainer reads: mix, FIM, tokenized shards.

- `category`: a document's category, decided once by `mix` (`metadata["category"]`) and read everywhere else;
- `mix` (the stage), `mixplan` (copies per document), `split` (windows of oversized documents);
- `fim`: the `fim` stage (the FIM format itself is `tokenizer.fim`);
- `shards`: the `tokenize_shards` stage (its manifest gathers each upstream kind's `provenance`);
  `megatron`: Megatron-LM `.bin/.idx` files, written and read.
"""
