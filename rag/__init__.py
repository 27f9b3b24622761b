"""rag: cited question answering over a folder of news articles.

Importing this package is cheap: heavy libraries (torch, faiss, gradio, llama_cpp) are imported
inside the functions that use them.
"""

__version__ = "0.1.0"
