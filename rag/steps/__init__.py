"""The pipeline steps, in order: corpus -> chunking -> embedder/bm25 -> index_store -> retrieve -> answer."""
