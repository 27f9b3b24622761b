"""The Gradio chat page. It only presents what rag's pipeline returns: no retrieval or prompt logic here."""
