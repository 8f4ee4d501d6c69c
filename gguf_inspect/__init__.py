"""gguf-inspect: look inside llama.cpp GGUF files before you deploy them.

The package is layered one way: constants/errors -> model -> reader -> analyses -> render -> cli.
"""

__version__ = "0.1.0"
