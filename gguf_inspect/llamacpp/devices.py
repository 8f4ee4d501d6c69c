"""GPU and size arguments of ``gguf-inspect vram``: ``24GiB``, ``8000MiB``, ``rtx4090``,
``2xa100-80g``, ``rtx3090,12GiB`` become a tuple of named capacities in bytes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gguf_inspect.core.errors import UsageError

MIB = 1 << 20

# Memory of common cards in MiB as nvidia-smi reports it (memory.total) with recent drivers
# (R525 and later; older drivers report a little less), not the nameplate: a "16 GB" T4 shows
# 15360 MiB and an "80 GB" H100 81559 MiB. Figures from pasted nvidia-smi output in public issue
# threads (e.g. NVIDIA/nccl#1264 for the H100, modal-labs/modal-client#2797 for T4/L4/A10/A100).
# The CUDA context still takes a few hundred MiB of it: pass --headroom to keep that free.
KNOWN_GPUS_MIB: dict[str, int] = {
    "t4": 15360, "l4": 23034, "a10": 23028, "a10g": 23028, "l40": 46068, "l40s": 46068,
    "a40": 46068, "a100-40g": 40960, "a100-80g": 81920, "h100-80g": 81559, "h100-94g": 95830,
    "h200": 143771, "v100-16g": 16384, "v100-32g": 32768, "rtx3060": 12288, "rtx3080": 10240,
    "rtx3090": 24576, "rtx4060ti-16g": 16380, "rtx4070": 12282, "rtx4080": 16376,
    "rtx4090": 24564, "rtx5090": 32607, "rtx-a6000": 49140, "rtx6000-ada": 49140,
}

_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "kib": 1 << 10,
    "m": 1000**2, "mb": 1000**2, "mib": 1 << 20,
    "g": 1000**3, "gb": 1000**3, "gib": 1 << 30,
    "t": 1000**4, "tb": 1000**4, "tib": 1 << 40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_COUNT = re.compile(r"^(\d+)\s*[x*]\s*(.+)$")


@dataclass(frozen=True)
class GPU:
    name: str  # the card's name, or the size as the user wrote it
    capacity_bytes: int


def parse_size(text: str) -> int:
    """``24GiB`` -> 25769803776, ``24GB`` -> 24000000000, ``512MiB``; a bare number is bytes."""
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise UsageError(f"not a size: {text!r} (use e.g. 24GiB, 24GB, 8000MiB)")
    return int(float(match.group(1)) * _UNITS[unit])


def parse_gpus(spec: str) -> tuple[GPU, ...]:
    """A comma-separated list of sizes or card names; ``2xrtx3090`` repeats a card."""
    gpus: list[GPU] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            raise UsageError(f"empty GPU entry in {spec!r}")
        count = 1
        repeated = _COUNT.match(item)
        if repeated and not _SIZE.match(item):
            count, item = int(repeated.group(1)), repeated.group(2).strip()
        gpus.extend([_one_gpu(item)] * count)
    return tuple(gpus)


def _one_gpu(item: str) -> GPU:
    key = item.lower().replace("_", "-")
    if key in KNOWN_GPUS_MIB:
        return GPU(key, KNOWN_GPUS_MIB[key] * MIB)
    try:
        capacity = parse_size(item)
    except ValueError:
        known = ", ".join(sorted(KNOWN_GPUS_MIB))
        raise UsageError(f"unknown GPU {item!r}: give a size (24GiB) or one of {known}") from None
    if capacity <= 0:  # llama.cpp's split is proportional to memory: a 0-byte card has no share
        raise UsageError(f"a GPU of {item!r} holds nothing: give its memory, e.g. 24GiB")
    return GPU(item, capacity)
