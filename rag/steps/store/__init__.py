"""Where an index lives, behind one narrow seam (``base.py``): a FAISS folder (the default,
``faiss_folder.py`` over ``rag/steps/index_store.py``) or a Milvus collection (``milvus_*.py``).

Nothing here imports faiss or pymilvus at module level; no client type crosses the seam.
"""
