"""The bottom layer: ggml/GGUF constants, the error hierarchy and the parsed-file data model.

Nothing here imports from the rest of the package or does I/O."""
