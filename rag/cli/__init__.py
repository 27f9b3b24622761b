"""The command-line edge: `rag` and its subcommands."""
