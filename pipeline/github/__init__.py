"""The code half of the corpus: discover and fetch GitHub repositories, read them file by file,
apply DeepSeek-Coder's filters, and build repo-level documents in dependency order."""
