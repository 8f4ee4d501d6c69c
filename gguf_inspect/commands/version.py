"""The ``--version`` line: our version and those of the two libraries whose behaviour we follow.

Bug reports about a llama.cpp figure need the llama-cpp-python version (it pins the llama.cpp
source the rules were checked against), so it is named even though it is optional.
"""

from __future__ import annotations

from importlib import metadata

from gguf_inspect.core.version import __version__


def _installed(distribution: str) -> str:
    # importlib.metadata reads the installed package's metadata without importing it (importing
    # llama_cpp would load the native library just to print a number).
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def version_line() -> str:
    return (f"gguf-inspect {__version__} (gguf {_installed('gguf')}, "
            f"llama-cpp-python {_installed('llama-cpp-python')})\n")
