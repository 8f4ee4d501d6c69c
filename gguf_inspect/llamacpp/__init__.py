"""Everything that restates llama.cpp: tensor names and roles, the model summary it prints,
its memory model (hyperparameters, placement, KV cache, compute graph), the quantizer recipe,
its load-log format, device sizes, and ``runtime``, the only module that imports llama_cpp.

Each rule names the file and function of the vendored llama.cpp source (llama-cpp-python
0.3.36, ``vendor/llama.cpp``) it follows; the real runtime in the test suite is the judge."""
