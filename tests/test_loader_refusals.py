"""What llama.cpp refuses before any tensor is read, held to llama.cpp itself.

Every zoo model is written once without each of its header keys (fixtures/zoo.py key_drops: 330
files) and each is loaded for real. llama.cpp then refuses it ("key not found in model", a
tensor of the wrong shape), aborts on an assert, or loads it with a default. The estimate must
refuse exactly the files llama.cpp refuses for a missing required key (the generated table
gguf_inspect/llamacpp/loader_keys.py) or aborts on for its expert counts, naming the key; it must
not refuse a file llama.cpp loads, and the files llama.cpp loads are the list below, whose
compute graphs tests/test_compute_trace.py traces. Tensor-shape checks (check_tensor_dims) and
the asserts of graph building are not modelled: for those files the estimate refuses or answers,
never crashes.

llama.cpp's verdicts are kept in GGUF_INSPECT_RUNTIME_ANSWERS when set (they depend on the
file's bytes only); without llama-cpp-python the test skips, except under CI.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gguf_inspect.core.errors import FormatError
from gguf_inspect.gguf.open import read_gguf
from gguf_inspect.llamacpp.hparams import read_hyperparameters
from gguf_inspect.llamacpp.memory import predict_memory
from gguf_inspect.llamacpp.settings import resolve_settings
from tests.conftest import FIXTURES, LOADED_KEY_DROPS, ROOT, load_script, unavailable

zoo = load_script("zoo", FIXTURES / "zoo.py")
DROPS = {model.stem: model for model in zoo.key_drops()}

# One process loads the files in turn and prints a verdict for each; an assert kills it (ggml
# aborts), so the parent records the abort for the file in progress and starts the next process.
LOADER = r"""
import json, sys
from gguf_inspect.llamacpp.runtime import capture_load
from gguf_inspect.llamacpp.settings import resolve_settings
for path in sys.argv[1:]:
    print("START", flush=True)
    try:
        capture_load(path, resolve_settings({})[0])
        print("VERDICT " + json.dumps("loaded"), flush=True)
    except Exception as error:
        print("VERDICT " + json.dumps("refused: " + str(error)), flush=True)
"""


def loader_verdicts(paths: list[Path]) -> list[str]:
    """llama.cpp's verdict on each file: "loaded", "refused: <error>" or "aborted: <assert>"."""
    verdicts: list[str] = []
    environment = {**os.environ, "GGML_NO_BACKTRACE": "1"}  # no gdb backtrace per abort
    while len(verdicts) < len(paths):
        rest = paths[len(verdicts):]
        run = subprocess.run([sys.executable, "-c", LOADER, *map(str, rest)], cwd=ROOT,
                             env=environment, capture_output=True, text=True)
        lines = run.stdout.splitlines()
        verdicts += [json.loads(line[len("VERDICT "):]) for line in lines
                     if line.startswith("VERDICT ")]
        started = sum(line == "START" for line in lines)
        if run.returncode != 0 and started > len(lines) - started:  # died inside a load
            asserted = re.findall(r"GGML_ASSERT\([^\n]*", run.stderr) or [run.stderr[-200:]]
            verdicts.append("aborted: " + asserted[-1])
        elif run.returncode != 0:
            raise RuntimeError(f"the loader failed outside a load:\n{run.stderr[-2000:]}")
    return verdicts


@pytest.fixture(scope="session")
def dropped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("key-drops")
    for stem, model in DROPS.items():
        zoo.write_model(model, folder / f"{stem}.gguf")
    return folder


@pytest.fixture(scope="session")
def verdicts(dropped: Path) -> dict[str, str]:
    if importlib.util.find_spec("llama_cpp") is None:
        unavailable("llama-cpp-python is not installed")
    answers = os.environ.get("GGUF_INSPECT_RUNTIME_ANSWERS")
    kept = Path(answers) if answers else None
    paths = {stem: dropped / f"{stem}.gguf" for stem in DROPS}
    saved = {stem: kept / ("loader-verdict-" + hashlib.sha256(path.read_bytes()).hexdigest())
             for stem, path in paths.items()} if kept else {}
    found = {stem: json.loads(saved[stem].read_text()) for stem in saved
             if saved[stem].exists()}
    missing = [stem for stem in DROPS if stem not in found]
    for stem, verdict in zip(missing, loader_verdicts([paths[stem] for stem in missing])):
        found[stem] = verdict
        if kept is not None:
            kept.mkdir(parents=True, exist_ok=True)
            saved[stem].write_text(json.dumps(verdict))
    return found


def test_llama_cpp_loads_exactly_these(verdicts: dict[str, str]) -> None:
    assert {stem for stem, verdict in verdicts.items() if verdict == "loaded"} == LOADED_KEY_DROPS


def _our_refusal(path: Path) -> FormatError | None:
    try:
        read_hyperparameters(read_gguf(str(path)))
    except FormatError as error:
        return error
    return None


@pytest.mark.parametrize("stem", sorted(DROPS))
def test_the_estimate_refuses_what_llama_cpps_loader_refuses(verdicts: dict[str, str],
                                                             dropped: Path, stem: str) -> None:
    path, verdict = dropped / f"{stem}.gguf", verdicts[stem]
    refusal = _our_refusal(path)
    missing = re.search(r"key not found in model: (\S+)", verdict)
    if missing:
        assert refusal is not None and refusal.field == missing.group(1), (verdict, refusal)
    elif verdict.startswith("aborted: GGML_ASSERT(n_expert"):  # load_hparams' expert asserts
        assert refusal is not None and "GGML_ASSERT in llama_model_base::load_hparams" in str(
            refusal), (verdict, refusal)
    elif verdict == "loaded":
        assert refusal is None, refusal
        predict_memory(read_gguf(str(path)), resolve_settings({})[0])
    else:  # a shape check or a graph assert, not modelled: refused or answered, never a crash
        try:
            predict_memory(read_gguf(str(path)), resolve_settings({})[0])
        except FormatError:
            pass
