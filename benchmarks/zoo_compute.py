"""The compute-buffer estimate against llama.cpp for every zoo model (fixtures/zoo/) at issue 13's
four configurations: one Markdown table, architecture x configuration, of the estimate's error
(prediction vs the runtime's logged compute buffer), plus whether every exact quantity matched.

    PYTHONPATH=. python benchmarks/zoo_compute.py > /tmp/zoo-table.md

Needs llama-cpp-python (real loads, CPU). Each load takes well under a second.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gguf_inspect.commands.runtime import compare_runtime
from gguf_inspect.reports.runtime import ESTIMATE, MATCH

ZOO = Path(__file__).resolve().parent.parent / "fixtures" / "zoo"
CONFIGURATIONS = {
    "defaults": {},
    "ctx 1000, parallel 2, FA off": {"n_ctx": 1000, "n_parallel": 2, "flash_attn": "off"},
    "ctx 1000, parallel 2, FA on": {"n_ctx": 1000, "n_parallel": 2, "flash_attn": "on"},
    "parallel 8, no swa_full": {"n_parallel": 8, "swa_full": False},
}


def row(model: Path) -> str:
    cells, exact = [], True
    for settings in CONFIGURATIONS.values():
        comparison = compare_runtime(str(model), settings)
        exact &= all(c.status == MATCH for c in comparison.checks if c.exact)
        errors = [c.note for c in comparison.checks if c.status == ESTIMATE]
        cells.append(", ".join(errors) or "-")
    return f"| {model.stem} | {' | '.join(cells)} | {'yes' if exact else 'NO'} |"


def main() -> None:
    header = "| model | " + " | ".join(CONFIGURATIONS) + " | exact rows match |"
    print(header)
    print("|" + "---|" * (len(CONFIGURATIONS) + 2))
    for model in sorted(ZOO.glob("*.gguf")):
        print(row(model))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
