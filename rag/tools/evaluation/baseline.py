"""Textbook LangChain baselines, for comparison: retrieval (RecursiveCharacterTextSplitter +
HuggingFaceEmbeddings, same model, no e5 prefixes, + FAISS.from_documents) and the RAG chain of
LangChain's tutorial over the product's own retriever and chat model."""

from __future__ import annotations

import re
import time
from typing import Any

from rag.core.types import Answer, Chunk, Document


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


# The prompt of LangChain's RAG tutorial (hub "rlm/rag-prompt"), as a textbook chain writes it.
TEXTBOOK_PROMPT = (
    "You are an assistant for question-answering tasks. Use the following pieces of retrieved context to "
    "answer the question. If you don't know the answer, just say that you don't know. Use three sentences "
    "maximum and keep the answer concise.\nQuestion: {question}\nContext: {context}\nAnswer:"
)
# How a chain that has no decline of its own says it does not know (English and Indonesian).
_DECLINES = re.compile(
    r"\b(don'?t know|do not know|not (?:mentioned|provided|stated|specified|available)|no information|"
    r"cannot (?:answer|be determined|find)|tidak (?:tahu|diketahui|disebutkan|ada informasi|dapat menjawab)|"
    r"tidak dijelaskan|tidak ditemukan|tidak tersedia)\b",
    re.IGNORECASE,
)


def looks_declined(text: str) -> bool:
    """The reply says it does not know (the textbook chain's only way to decline)."""
    return not text.strip() or bool(_DECLINES.search(text))


class TextbookChain:
    """The textbook LangChain RAG chain over the same retriever, k and chat model as the product:
    {"context": retriever | join, "question": passthrough} | prompt | chat model | StrOutputParser."""

    def __init__(self, retriever: Any, chat: Any, k: int) -> None:
        from langchain_core.output_parsers import StrOutputParser
        from langchain_core.prompts import ChatPromptTemplate
        from langchain_core.runnables import RunnablePassthrough

        from rag.adapters.langchain import RagRetriever

        def join(docs: list) -> str:
            return "\n\n".join(d.page_content for d in docs)

        lc_retriever = RagRetriever(retriever=retriever, k=k)
        prompt = ChatPromptTemplate.from_messages([("human", TEXTBOOK_PROMPT)])
        self.chain = (
            {"context": lc_retriever | join, "question": RunnablePassthrough()} | prompt | chat | StrOutputParser()
        )

    def answer(self, question: str) -> Answer:
        from rag.steps.language import detect_language

        started = time.perf_counter()
        parts: list[str] = []
        first_token_ms = None
        for piece in self.chain.stream(question):
            if first_token_ms is None:
                first_token_ms = (time.perf_counter() - started) * 1000
            parts.append(piece)
        text = "".join(parts).strip()
        timings = {"total_ms": (time.perf_counter() - started) * 1000}
        if first_token_ms is not None:
            timings["first_token_ms"] = first_token_ms
        return Answer(
            question=question,
            text=text,
            language=detect_language(text, fallback="en"),
            citations=(),
            hits=(),
            declined=looks_declined(text),
            decline_reason="says it does not know" if looks_declined(text) else "",
            timings=timings,
            raw_text=text,
        )
