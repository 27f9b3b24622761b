"""A LangChain BaseRetriever over the product's retriever, for users who compose their own chains."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict


class RagRetriever(BaseRetriever):
    """Returns LangChain Documents whose metadata carries chunk id, document, offsets, score and rank."""

    retriever: Any  # rag.steps.retrieve.Retriever
    k: int = 5
    mode: str = "hybrid"
    model_config = ConfigDict(arbitrary_types_allowed=True)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        hits = self.retriever.search(query, self.k, self.mode).hits
        return [
            LCDocument(
                page_content=h.chunk.text,
                metadata={
                    "chunk_id": h.chunk.chunk_id,
                    "doc_id": h.chunk.doc_id,
                    "title": h.chunk.title,
                    "start": h.chunk.start,
                    "end": h.chunk.end,
                    "score": h.score,
                    "rank": h.rank,
                    "method": h.method,
                },
            )
            for h in hits
        ]
