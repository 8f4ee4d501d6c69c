"""The public Python API (gguf_inspect.api, re-exported lazily by the package): each function
against an independent oracle (gguf-py's reader, first-principles sizes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gguf
import pytest

import gguf_inspect as gi
from tests.conftest import fixture_path

TIED = fixture_path("tiny-llama-tied-q4_k_m.gguf")
UNTIED_F16 = fixture_path("tiny-llama-untied-f16.gguf")
UNTIED_Q4 = fixture_path("tiny-llama-untied-q4_k_m.gguf")


def _field(reader: gguf.GGUFReader, key: str) -> int:
    field = reader.fields[key]
    return int(field.parts[field.data[0]][0])


def test_every_public_name_resolves_and_importing_the_package_stays_light() -> None:
    code = ("import sys, gguf_inspect as gi; light = 'numpy' not in sys.modules; "
            "[getattr(gi, name) for name in gi.__all__]; print(light)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
    with pytest.raises(AttributeError):
        getattr(gi, "not_a_public_name")


def test_the_package_is_marked_typed() -> None:
    assert (Path(gi.__file__).parent / "py.typed").is_file()


def test_embeddings_reports_what_gguf_py_reads() -> None:
    tensor = next(t for t in gguf.GGUFReader(TIED).tensors if t.name == "token_embd.weight")
    report = gi.embeddings(str(TIED))
    assert report.embedding.n_bytes == int(tensor.n_bytes)
    assert report.embedding.type == tensor.tensor_type.name.lower().replace("q6_k", "q6_K")
    assert report.tied_output is True


def test_predict_memory_lays_changes_over_the_defaults() -> None:
    """KV cache at n_ctx 1024: per layer, K and V rows of head_dim x n_head_kv f16 values for
    each of 1024 cells (n_ctx is already a multiple of 256)."""
    reader = gguf.GGUFReader(TIED)
    n_embd, n_head = _field(reader, "llama.embedding_length"), _field(reader,
                                                                      "llama.attention.head_count")
    n_head_kv, n_layer = (_field(reader, "llama.attention.head_count_kv"),
                          _field(reader, "llama.block_count"))
    expected = n_layer * 2 * 1024 * (n_embd // n_head) * n_head_kv * 2
    prediction = gi.predict_memory(str(TIED), n_ctx=1024)
    assert sum(cache.n_bytes for cache in prediction.kv_caches) == expected
    again = gi.predict_memory(str(TIED), gi.LlamaSettings(n_ctx=2048), n_parallel=1)
    assert sum(cache.n_bytes for cache in again.kv_caches) == 2 * expected


def test_diff_takes_locations_or_open_models_and_leaves_given_models_open() -> None:
    report = gi.diff(str(UNTIED_F16), str(UNTIED_Q4))
    assert report.differs
    with gi.open_model(str(UNTIED_F16)) as first, gi.open_model(str(UNTIED_F16)) as second:
        same = gi.diff(first, second)
        assert not same.differs
        assert first.source.read_at(0, 4) == b"GGUF"  # still open for its owner


def test_the_readme_example_runs_on_the_fixtures(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    code = readme[readme.index("## Python API"):].split("```python")[1].split("```")[0]
    for name, fixture in (("model.gguf", UNTIED_Q4), ("model-f16.gguf", UNTIED_F16),
                          ("model-q4_k_m.gguf", UNTIED_Q4)):
        code = code.replace(f'"{name}"', repr(str(fixture)))
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out.split("\n")
    assert printed[0].startswith("llama ")
    assert printed[3] == "True"  # an f16 and a Q4_K_M quantization differ
