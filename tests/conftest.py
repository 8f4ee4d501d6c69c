"""Shared test helpers: where the committed fixtures live, small builders of GGUF bytes, and
the loader of the scripts in benchmarks/ and fixtures/."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import gguf

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
ALL_FIXTURES = sorted(FIXTURES.glob("*.gguf"))


def write_gguf(writer: gguf.GGUFWriter) -> None:
    """Write a GGUFWriter's header, metadata and tensors, and close it: the end of every
    GGUF file a test builds."""
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()



# Read-aheads for ``BytesSource``: the default one (entries decoded straight from the buffer,
# reader._fast_entry / _fast_tensor_info) and one of a byte, which refills the buffer with
# exactly each field read, so that no entry is ever whole in it and every one goes the careful
# field-by-field way (_careful_entry and the rest of _read_tensor_infos).
READ_PATHS = {"fast": None, "careful": (1, 1)}


class BytesSource:
    """GGUF bytes in memory as a reader ``ByteSource`` named ``name``, with an optional
    ``read_ahead`` (first and largest read)."""

    def __init__(self, data: bytes, read_ahead: tuple[int, int] | None = None,
                 name: str = "mem.gguf") -> None:
        self.data, self.size, self.name = data, len(data), name
        if read_ahead is not None:
            self.read_ahead = read_ahead

    def read_at(self, offset: int, length: int) -> bytes:
        return self.data[offset:offset + length]

    def close(self) -> None:
        pass


def load_script(name: str, path: Path) -> ModuleType:
    """benchmarks/ and fixtures/ hold scripts, not packages: load one by path as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _keep_runtime_captures(folder: Path) -> None:
    """Make ``capture_load`` keep each real load's capture in ``folder``, keyed by the file's
    bytes and the settings llama.cpp was given (all a capture depends on).

    benchmarks/mutation.py sets GGUF_INSPECT_RUNTIME_ANSWERS: it reruns the real-load
    comparisons once per mutant of a memory module, and llama.cpp's answers do not change with
    our code. A mutant of the settings changes the settings given, so it misses the folder and
    llama.cpp loads the file again.
    """
    from gguf_inspect.llamacpp import runtime

    real = runtime.capture_load

    def kept(path: str, config: Any, *args: Any, **kwargs: Any) -> Any:
        if not Path(path).is_file():  # nothing to key on: llama.cpp's own error, every time
            return real(path, config, *args, **kwargs)
        extras = [Path(extra).read_bytes() for extra in map(str, (*args, *kwargs.values()))
                  if Path(extra).is_file()]
        key = hashlib.sha256(repr((config, args, sorted(kwargs.items()))).encode()
                             + Path(path).read_bytes() + b"".join(extras)).hexdigest()
        saved = folder / key
        if saved.exists():
            return pickle.loads(saved.read_bytes())
        capture = real(path, config, *args, **kwargs)
        partial = saved.with_suffix(f".{os.getpid()}")
        partial.write_bytes(pickle.dumps(capture))
        partial.replace(saved)  # atomic: parallel runs never read half a capture
        return capture

    runtime.capture_load = kept


if os.environ.get("GGUF_INSPECT_RUNTIME_ANSWERS"):
    _keep_runtime_captures(Path(os.environ["GGUF_INSPECT_RUNTIME_ANSWERS"]))


def _forget_memoized_results() -> None:
    ours = (str(ROOT / "tests"), str(ROOT / "gguf_inspect"))
    for module in list(sys.modules.values()):
        # test modules are imported by file name ("test_zoo"), so match where they live
        if str(getattr(module, "__file__", None) or "").startswith(ours):
            for value in list(vars(module).values()):
                clear = getattr(value, "cache_clear", None)
                if callable(clear):
                    clear()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Under mutmut, forget every memoized result before each test.

    mutmut forks each mutant's run from a process that already ran the tests unmutated: a
    functools cache in a test module (one real load per model and settings) or in the package
    would hand the mutant's tests the unmutated answers, and the mutant would survive. And
    mutmut's first run records which tests reach which function: a test that found its
    comparison already cached by an earlier test would not be recorded, and would then never
    run against that function's mutants. So under mutmut every test computes its own.
    """
    if os.environ.get("MUTANT_UNDER_TEST"):
        _forget_memoized_results()


# The zoo written at other widths, name -> (n_embd, head size, FFN width): see
# tests/test_compute_wide.py for why; quantized caches need the wider heads (a 32-value block
# must divide the head)
WIDTHS = {"e256": (256, 64, 128), "e512": (512, 128, 128), "ff1024": (64, 16, 1024)}


class WideZooModel(os.PathLike):
    """One zoo model at another width (WIDTHS), written on first use under the system's
    temporary folder: a path a test table can hold before any fixture runs. The bytes are the
    same every time (fixtures/zoo.py is deterministic), so llama.cpp's kept answers, keyed by
    them, stay valid."""

    def __init__(self, width: str, stem: str, build: Any = None) -> None:
        """``width``: a WIDTHS key, or "" for the zoo's own; ``build``: made from the zoo
        module (``lambda zoo: zoo.gemma3n(22)``) when the stem is neither one of all_models()
        nor one of variants()."""
        self.width, self.stem, self.build = width, stem, build

    def __fspath__(self) -> str:
        import tempfile

        # named by fixtures/zoo.py's own hash: a file written by an older zoo is never reused
        source = hashlib.sha256((FIXTURES / "zoo.py").read_bytes()).hexdigest()[:12]
        folder = Path(tempfile.gettempdir()) / f"gguf-inspect-wide-zoo-{source}" / (
            self.width or "zoo")
        path = folder / f"{self.stem}.gguf"
        if not path.exists():
            zoo = load_script("zoo", FIXTURES / "zoo.py")
            zoo = zoo.widened(*WIDTHS[self.width]) if self.width else zoo
            (model,) = ([self.build(zoo)] if self.build else
                        [model for model in zoo.all_models() + zoo.variants()
                         if model.stem == self.stem])
            assert model.stem == self.stem, model.stem
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.part")
            zoo.write_model(model, partial)
            partial.replace(path)  # whole or absent, for a concurrent reader
        return str(path)

    def __str__(self) -> str:
        return self.__fspath__()

    def __repr__(self) -> str:
        return f"WideZooModel({self.width!r}, {self.stem!r})"


# the drops llama.cpp loads (a header key it reads with a default): found by the real loads of
# tests/test_loader_refusals.py, and traced node by node in tests/test_compute_trace.py
LOADED_KEY_DROPS = frozenset({
    "bert-no-attention.causal", "bert-no-attention.head_count_kv", "bert-no-pooling_type",
    "bert-no-rope.dimension_count", "cohere2-no-rope.dimension_count",
    "deepseek2-mla-no-attention.value_length", "falcon-no-rope.dimension_count",
    "gemma2-no-attention.sliding_window", "gemma2-no-rope.dimension_count",
    "gemma3-no-attention.sliding_window", "gemma3-no-rope.dimension_count",
    "gemma3n-no-attention.sliding_window_pattern", "gemma3n-no-rope.dimension_count",
    "glm4moe-mtp-no-rope.dimension_count", "glm4moe-no-rope.dimension_count",
    "gpt-oss-no-feed_forward_length", "gpt-oss-no-rope.dimension_count",
    "gptneox-no-attention.head_count_kv", "gptneox-no-rope.dimension_count",
    "granite-no-attention.scale", "granite-no-embedding_scale", "granite-no-residual_scale",
    "granite-no-rope.dimension_count", "granitehybrid-no-attention.scale",
    "granitehybrid-no-embedding_scale", "granitehybrid-no-logit_scale",
    "granitehybrid-no-residual_scale", "granitehybrid-no-rope.dimension_count",
    "granitemoe-no-attention.scale", "granitemoe-no-embedding_scale",
    "granitemoe-no-residual_scale", "granitemoe-no-rope.dimension_count",
    "lfm2-no-rope.dimension_count", "llama4-no-rope.dimension_count",
    "mamba-no-attention.head_count", "mamba-no-feed_forward_length",
    "mamba2-no-attention.head_count", "mamba2-no-feed_forward_length",
    "mistral3-no-rope.dimension_count", "nemotron_h-no-attention.layer_norm_rms_epsilon",
    "nemotron_h-no-rope.dimension_count",
    "nemotron_h_moe-no-attention.layer_norm_rms_epsilon", "nemotron_h_moe-no-expert_weights_norm",
    "nemotron_h_moe-no-expert_weights_scale", "nemotron_h_moe-no-rope.dimension_count",
    "nomic-bert-no-attention.causal",
    "nomic-bert-no-attention.head_count_kv", "nomic-bert-no-pooling_type",
    "nomic-bert-no-rope.dimension_count", "olmo2-no-rope.dimension_count",
    "olmo2-swa-no-attention.sliding_window", "olmo2-swa-no-rope.dimension_count",
    "phi3-no-rope.dimension_count", "qwen2-no-rope.dimension_count",
    "qwen3-no-rope.dimension_count", "qwen3moe-no-feed_forward_length",
    "qwen3moe-no-rope.dimension_count", "qwen3next-no-feed_forward_length",
    "qwen3next-no-full_attention_interval", "qwen3next-no-rope.dimension_count",
    "rwkv7-no-attention.head_count", "rwkv7-no-attention.layer_norm_epsilon",
    "rwkv7-no-token_shift_count", "starcoder2-no-rope.dimension_count"})


@pytest.fixture(scope="session")
def wide_zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zoo written other ways, once a session (``write_wide_zoo``)."""
    return write_wide_zoo(tmp_path_factory.mktemp("wide-zoo"))


def write_wide_zoo(folder: Path) -> Path:
    """The zoo at each width, ``<folder>/<width>/<stem>.gguf``, ``<folder>/variants/``: zoo
    models with a graph-changing key (fixtures/zoo.py variants), and ``<folder>/dropped/``: the
    zoo models without one key that llama.cpp loads all the same (LOADED_KEY_DROPS)."""
    zoo = load_script("zoo", FIXTURES / "zoo.py")
    for width, (n_embd, head_size, n_ff) in WIDTHS.items():
        (folder / width).mkdir()
        wide = zoo.widened(n_embd, head_size, n_ff)
        for model in wide.all_models():
            wide.write_model(model, folder / width / f"{model.stem}.gguf")
    (folder / "variants").mkdir()
    for model in zoo.variants():
        zoo.write_model(model, folder / "variants" / f"{model.stem}.gguf")
    (folder / "dropped").mkdir()
    for model in zoo.key_drops():
        if model.stem in LOADED_KEY_DROPS:
            zoo.write_model(model, folder / "dropped" / f"{model.stem}.gguf")
    return folder


def loader_required(arch: str) -> dict[str, int]:
    """The keys llama.cpp's loader requires of ``arch`` (hparams.base_required, arch_required),
    each with 0: what the estimate reads for an absent one. A synthetic test header carries them
    so that it is refused only for what the test is about (tests/test_loader_refusals.py holds
    the rule to llama.cpp)."""
    from gguf_inspect.llamacpp.hparams import arch_required, base_required

    # (deepseek2 as the non-lite model, which needs its Q LoRA rank too)
    return {key: 0 for key in base_required(arch) + arch_required(arch, deepseek2_lite=False)}


def unavailable(reason: str) -> None:
    """Without what a real-load oracle needs its tests skip, except under CI (.ci/run), which
    installs it all: there a missing piece must fail, not pass quietly."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def fixture_path(name: str) -> Path:
    path = FIXTURES / name
    assert path.exists(), f"missing fixture {path}: run python fixtures/build.py"
    return path


@pytest.fixture(params=ALL_FIXTURES, ids=lambda p: p.name)
def any_fixture(request: pytest.FixtureRequest) -> Path:
    """Each committed fixture model in turn."""
    return request.param
