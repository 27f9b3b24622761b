"""The exit codes of `rag`, listed in `rag --help`."""

EXIT_OK = 0
EXIT_STALE = 1  # `ingest --check`: the index is stale
EXIT_USAGE = 2  # wrong or missing arguments (argparse uses 2 too)
EXIT_FAILED = 3  # the product could not do it: bad input, settings, model or index (the message says why)
EXIT_INTERRUPTED = 130
EXIT_CODES = f"""exit codes:
  {EXIT_OK}    success
  {EXIT_STALE}    ingest --check: the index is stale
  {EXIT_USAGE}    usage error: wrong or missing arguments
  {EXIT_FAILED}    the command failed: bad input, settings, model or index (stderr says why and what to do)
  {EXIT_INTERRUPTED}  interrupted"""
