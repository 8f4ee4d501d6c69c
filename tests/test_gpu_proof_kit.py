"""benchmarks/gpu_proof.py --dry-run: everything but the CUDA build and the loads, on this CPU
machine (the GPU run itself is never part of the suite)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parent.parent


def test_dry_run_writes_a_prediction_for_every_setting(tmp_path: Path, capsys) -> None:
    kit = load_script("gpu_proof", ROOT / "benchmarks" / "gpu_proof.py")
    assert kit.main(["--dry-run", "--shapes", "swa-gemma3-270m", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "-DGGML_CUDA=ON" in printed and "-DCMAKE_CUDA_ARCHITECTURES=90" in printed
    assert str(Path("vendor") / "llama.cpp") in printed
    rows = json.loads((tmp_path / "table.json").read_text())["rows"]
    settings = {row["setting"] for row in rows}
    assert settings == {name for name, _ in kit.MATRIX}
    assert all("error" not in row and row["runtime"] is None for row in rows)
    full = {row["buffer"]: row["predicted"] for row in rows if row["setting"] == "full"}
    # Gemma-3-270M at n_ctx 8192 with swa_full (llama.cpp's default): all 18 layers, global
    # and sliding-window, hold 8192 cells: 18 x 8192 x 256 x 2 (K and V) x 2 bytes = 144 MiB,
    # split over the two caches.
    kv = [row["predicted"] for row in rows if row["setting"] == "full" and "kv" in row["buffer"]]
    assert sum(kv) == 18 * 8192 * 256 * 2 * 2 / 2**20
    assert "CUDA0 compute" in full and "CUDA_Host compute" in full
    no_kv = [row["buffer"] for row in rows if row["setting"] == "no-kv-offload"]
    assert "CUDA0 kv" not in no_kv and "CPU kv" in no_kv
    assert not list(tmp_path.glob("*.gguf"))  # the sparse twin is removed
    assert "| shape | setting |" in (tmp_path / "table.md").read_text()


def test_the_moe_shape_adds_n_cpu_moe() -> None:
    kit = load_script("gpu_proof", ROOT / "benchmarks" / "gpu_proof.py")
    assert ("n-cpu-moe-4", ["--n-cpu-moe", "4"]) in kit.settings_for("moe-30b-a3b")
    assert ("half", ["--ngl", "16"]) in kit.settings_for("dense-8b")
