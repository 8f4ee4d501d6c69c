"""The only code that touches a model's bytes: byte sources (local, HTTP range, split shards),
the header reader, dequantization of tensor rows, and ``open_model``, which ties them together.

Named after the file format; llama.cpp's own gguf-py package is imported as ``gguf`` (absolute
imports), never as this one."""
