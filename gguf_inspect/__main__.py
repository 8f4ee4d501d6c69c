"""Allow ``python -m gguf_inspect``."""

from gguf_inspect.cli import main

main()
