"""The textbook LangChain pipeline, for comparison: RecursiveCharacterTextSplitter +
HuggingFaceEmbeddings (same model, no e5 prefixes, as the textbook writes it) + FAISS.from_documents."""

from __future__ import annotations

from typing import Any

from rag.core.types import Chunk, Document


def langchain_embeddings(model_location: str) -> Any:
    from langchain_huggingface import HuggingFaceEmbeddings

    return HuggingFaceEmbeddings(
        model_name=model_location, model_kwargs={"device": "cpu"}, encode_kwargs={"normalize_embeddings": True}
    )


class LangChainBaseline:
    def __init__(
        self, documents: list[Document], embeddings: Any, chunk_size: int = 1000, chunk_overlap: int = 200
    ) -> None:
        from langchain_community.vectorstores import FAISS
        from langchain_core.documents import Document as LCDocument
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size, chunk_overlap=chunk_overlap, add_start_index=True
        )
        lc_docs = [LCDocument(page_content=d.text, metadata={"doc_id": d.doc_id, "title": d.title}) for d in documents]
        pieces = splitter.split_documents(lc_docs)
        self.embeddings = embeddings
        self.store = FAISS.from_documents(pieces, self.embeddings)
        self.chunks = [self._chunk(p) for p in pieces]

    @staticmethod
    def _chunk(piece) -> Chunk:
        start = int(piece.metadata.get("start_index", 0))
        doc_id = piece.metadata["doc_id"]
        return Chunk(
            f"{doc_id}#{start}",
            doc_id,
            start,
            start + len(piece.page_content),
            piece.page_content,
            piece.metadata.get("title", ""),
        )

    def search(self, question: str, k: int) -> list[Chunk]:
        return [self._chunk(d) for d in self.store.similarity_search(question, k=k)]
