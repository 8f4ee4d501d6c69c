"""The only code that talks to llama.cpp itself (through llama-cpp-python), as the reader is the
only code that touches GGUF bytes. Imported lazily, by the ``runtime`` command alone."""
