import subprocess
import sys

HEAVY = ("torch", "faiss", "gradio", "llama_cpp", "sentence_transformers", "transformers", "langchain_core")


def test_bare_import_and_help_load_no_heavy_library():
    code = (
        "import sys, rag, rag.cli.main\n"
        "rag.cli.main.build_parser()\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "rag", "--help"], capture_output=True, text=True, check=True)
    for command in ("models", "ingest", "search", "ask", "chat", "serve", "eval"):
        assert command in out.stdout
