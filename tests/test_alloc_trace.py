"""benchmarks/alloc_trace.py's pure parts on a committed excerpt of ggml-alloc.c's AT_PRINTF trace
(tests/data/alloc-trace-sample.txt: the first lines of the three graphs llama.cpp reserved for
fixtures/zoo/qwen2.gguf at the defaults, from a real load under the traced library). Building
the library and loading under it need a compiler, the sdist and llama.cpp, and are not tested."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parent.parent
alloc_trace = load_script("alloc_trace", ROOT / "benchmarks" / "alloc_trace.py")

SAMPLE = (Path(__file__).resolve().parent / "data" / "alloc-trace-sample.txt").read_text()


def test_the_trace_is_normalised_to_one_event_a_line() -> None:
    events = alloc_trace.normalise_c_trace(SAMPLE)
    # the sample's first lines, read by eye
    assert events[:3] == ["alloc inp_tokens 2048 @ 0", "alloc inp_embd 131072 @ 2048",
                          "alloc inp_pos 2048 @ 133120"]
    assert "free inp_tokens @ 0 (2048)" in events
    assert "inplace attn_norm-0 <- norm-0" in events
    # "not reusing parent ..." is a refusal, not a reuse; exec/parent/view_src lines are dropped
    assert not any("inp_pos" in event and "inplace" in event for event in events)
    assert all(event.split()[0] in ("alloc", "free", "inplace") for event in events)


def test_the_trace_splits_into_the_graphs_reserved() -> None:
    graphs = alloc_trace.split_graphs(alloc_trace.normalise_c_trace(SAMPLE))
    assert len(graphs) == 3
    # the second reserve is the one-token graph: its first input is 32 bytes, not 2048
    assert [graph[0] for graph in graphs] == ["alloc inp_tokens 2048 @ 0",
                                              "alloc inp_tokens 32 @ 0",
                                              "alloc inp_tokens 2048 @ 0"]
    assert graphs[2][1] == "alloc inp_embd 131072 @ 2048"


def test_zero_byte_tensors_take_no_place() -> None:
    events = ["alloc a 0 @ 0", "alloc b 64 @ 0", "free a @ 0 (0)", "free b @ 0 (64)",
              "inplace c <- b"]
    # an in-place reuse stays (it has no offset of its own: the parent's memory)
    assert [e.key for e in alloc_trace.placements(events)] == [("alloc", 0, 64), ("free", 0, 64),
                                                               ("inplace", -1, 0)]
    assert alloc_trace.peak(["alloc a 64 @ 0", "alloc b 32 @ 64", "free a @ 0 (64)"]) == 96


def test_identical_traces_agree_whatever_the_names() -> None:
    graph = alloc_trace.split_graphs(alloc_trace.normalise_c_trace(SAMPLE))[2]
    renamed = [event.replace("attn_inp_k_idxs", "k_idxs") for event in graph]
    verdict = alloc_trace.first_divergence(graph, renamed)
    assert verdict.startswith("same: ")
    assert f"peak {alloc_trace.peak(graph)} vs {alloc_trace.peak(graph)}" in verdict


def test_the_first_offset_that_differs_is_shown_in_context() -> None:
    graph = alloc_trace.split_graphs(alloc_trace.normalise_c_trace(SAMPLE))[2]
    moved = list(graph)
    index = moved.index("alloc attn_inp_kq_mask 4194304 @ 143360")
    moved[index] = "alloc attn_inp_kq_mask 4194304 @ 147456"
    verdict = alloc_trace.first_divergence(graph, moved).splitlines()
    assert verdict[0] == f"diverge at event {index} (llama.cpp | ours)"
    marked = [line for line in verdict if line.startswith(">")]
    assert len(marked) == 1 and "@ 143360" in marked[0] and "@ 147456" in marked[0]


def test_a_shorter_trace_is_reported() -> None:
    graph = ["alloc a 64 @ 0", "free a @ 0 (64)"]
    assert alloc_trace.first_divergence(graph, graph[:1]).startswith("same prefix, different")


def test_the_debug_source_turns_the_trace_on() -> None:
    prints = "".join(f"{release}\n" for release, _ in alloc_trace.EXEC_PRINTS)
    release = ("#include <stdio.h>\n//#define AT_PRINTF(...) X\n#define AT_PRINTF(...)\nint x;\n"
               + prints)
    debug = alloc_trace.debug_source(release)
    assert "#define AT_PRINTF(...) fprintf(stderr, __VA_ARGS__)\n" in debug
    assert debug.count("AT_PRINTF") == 4 and debug.endswith("int x;\n" + "".join(
        f"{traced}\n" for _, traced in alloc_trace.EXEC_PRINTS))
    with pytest.raises(ValueError):
        alloc_trace.debug_source("#define AT_PRINTF(...) printf(__VA_ARGS__)\n")


def test_our_trace_peaks_at_the_compute_estimate() -> None:
    """``ours`` (no compiler, no llama.cpp): compute_graph's placements for a zoo model, whose
    highest end is the compute buffer predict_memory reports; the allocator is restored."""
    from gguf_inspect.gguf.open import read_gguf
    from gguf_inspect.llamacpp import compute_graph
    from gguf_inspect.llamacpp.memory import predict_memory
    from gguf_inspect.llamacpp.settings import LlamaSettings

    model = str(ROOT / "fixtures" / "zoo" / "rwkv7.gguf")
    from gguf_inspect.llamacpp import memory

    allocate, estimate = compute_graph._allocate, memory.estimate_compute_bytes
    events = alloc_trace.our_trace(model, {"n_parallel": 2})
    assert compute_graph._allocate is allocate and memory.estimate_compute_bytes is estimate
    assert events[0].startswith("alloc inp_tokens ") and events[0].endswith(" @ 0")
    assert any(event.startswith("inplace ") for event in events)
    (compute,) = [b for b in predict_memory(read_gguf(model), LlamaSettings(n_parallel=2)).buffers
                  if b.kind == "compute"]
    assert alloc_trace.peak(events) == compute.n_bytes


def test_a_fused_qkv_copies_v_for_the_transposed_cache() -> None:
    """llama_kv_cache::cpy_v: without flash attention the V cache is transposed and V, a
    strided view of the fused wqkv (phi3), is made contiguous first (ggml_cont_2d), once per
    layer; with flash attention it is written as it is. ggml-alloc's own trace lists those
    copies (``Vcur-0 (cont)``), which is how the difference was found."""
    model = str(ROOT / "fixtures" / "zoo" / "phi3.gguf")
    copies = [e for e in alloc_trace.our_trace(model, {"flash_attn": "off"})
              if e.startswith("alloc v_cont ")]
    # phi3 zoo model: 2 layers, V 2 KV heads x 16 = 32 floats per token, 512 tokens
    assert [int(e.split()[2]) for e in copies] == [32 * 4 * 512] * 2
    assert not [e for e in alloc_trace.our_trace(model, {"flash_attn": "on"})
                if e.startswith("alloc v_cont ")]


def test_the_traced_source_prints_each_nodes_address() -> None:
    release = ('#define AT_PRINTF(...)\n'
               + "".join(f"{release}\n" for release, _ in alloc_trace.EXEC_PRINTS))
    debug = alloc_trace.debug_source(release)
    assert "(void *) node" in debug and "(void *) parent" in debug
    with pytest.raises(ValueError):  # a ggml-alloc.c that prints its nodes otherwise
        alloc_trace.debug_source("#define AT_PRINTF(...)\n")


def test_the_structure_follows_views_and_tells_inputs_from_weights() -> None:
    c_trace = "\n".join([
        "ggml_dyn_tallocr_alloc: allocating inp_tokens (64 bytes) - block 0, offset 0, chunk 0",
        "exec: GET_ROWS (embd) @0x10 <= token_embd.weight @0x1, inp_tokens @0x2",
        "exec: RESHAPE (embd (reshaped)) @0x11 <= embd @0x10",
        "exec: CPY (embd (copy)) @0x12 <= embd (reshaped) @0x11, embd (copy) @0x12",
        "exec: MUL_MAT (out) @0x13 <= blk.0.w @0x3, embd (copy) @0x12",
    ])
    events = alloc_trace.normalise_c_trace(c_trace)
    assert events[1] == "exec GET_ROWS 0x10 <= token_embd.weight@0x1|inp_tokens@0x2"
    # the reshape is no node of its own; the CPY reads the GET_ROWS through it; ggml_cast's
    # CPY names itself as its destination (src[1]), which is left out
    assert alloc_trace.structure(events) == [("GET_ROWS", ("external", "input")),
                                             ("CPY", (0,)), ("MUL_MAT", ("external", 1))]
