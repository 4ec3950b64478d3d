"""From curated documents to what a trainer reads: decontaminate, mix, FIM, tokenized shards."""
