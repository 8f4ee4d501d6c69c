"""The pre-deployment memory audit: per-device totals from the memory model, the fit verdict,
the largest ``--ngl`` that fits, the longest context that fits at full offload, and the plan grid.

All numbers come from ``llamacpp.memory.predict_memory``; this module only sums, compares and
searches. Fit is not monotone in the offloaded layer count: with layers left on the host,
llama.cpp runs their large-batch matmuls on the first GPU (``op_offload``, ggml_backend_sched),
whose compute buffer then holds copies of host weights, so ``--ngl 0`` can need more GPU memory
than ``--ngl 1``. The weights and KV cache the GPUs hold together are monotone in it, though: the
``--ngl`` search binary-searches that exact lower bound, then tries every count below it, from
the top, with the whole prediction. At full offload every size in the graph grows with the
context, so the context search stays a binary search.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gguf_inspect.llamacpp.devices import GPU
from gguf_inspect.llamacpp.extras import ExtraFiles, ExtraLoad, extra_buffers, extra_loads
from gguf_inspect.llamacpp.fit import FitPlan, FitRequest, fit_params, projector_margins
from gguf_inspect.llamacpp.hparams import read_hyperparameters
from gguf_inspect.llamacpp.kv_cache import CTX_PAD
from gguf_inspect.llamacpp.memory import MemoryPrediction, predict_memory
from gguf_inspect.llamacpp.placement import HOST, BufferEstimate
from gguf_inspect.llamacpp.settings import LlamaSettings
from gguf_inspect.core.model import GGUFFile

PLAN_CONTEXTS = (4096, 8192, 16384, 32768)
KINDS = ("model", "kv", "output", "compute")


@dataclass(frozen=True)
class DeviceUsage:
    name: str  # "host", "gpu0", ...
    capacity_bytes: int | None  # None for host RAM (not audited)
    weights_bytes: int
    kv_bytes: int
    output_bytes: int
    compute_bytes: int
    extra_bytes: int = 0  # LoRA adapters, a draft model, a projector (their own rows)

    @property
    def total_bytes(self) -> int:
        return (self.weights_bytes + self.kv_bytes + self.output_bytes + self.compute_bytes
                + self.extra_bytes)

    def free_bytes(self, headroom: int) -> int | None:
        """What is left after the buffers and the headroom; negative when over."""
        if self.capacity_bytes is None:
            return None
        return self.capacity_bytes - headroom - self.total_bytes


# The usage column each buffer of a file loaded beside the model counts in (its own row).
EXTRA_KIND_COLUMN = {"draft_kv": "kv", "draft_output": "output", "draft_compute": "compute",
                     "mmproj_compute": "compute"}  # anything else: weights


@dataclass(frozen=True)
class KVCacheTotals:
    """Every KV cache together (a sliding-window model has two): the JSON's ``kv_cache``."""

    n_bytes: int
    k_bytes: int
    v_bytes: int
    cells: int  # the first (main) cache's
    layers: int


@dataclass(frozen=True)
class PlanRow:
    n_ctx: int
    max_gpu_layers: int | None  # None: not even the CPU-only split fits the GPUs
    fits_full_offload: bool


@dataclass(frozen=True)
class VramReport:
    path: str
    architecture: str | None
    n_layer: int
    config: LlamaSettings
    gpus: tuple[GPU, ...]
    headroom_bytes: int
    prediction: MemoryPrediction
    devices: tuple[DeviceUsage, ...]
    fits: bool | None
    max_gpu_layers: int | None
    max_ctx: int | None
    plan: tuple[PlanRow, ...] | None
    assumptions: tuple[str, ...]
    extras: tuple[ExtraLoad, ...] = ()  # files loaded beside the model
    context_warning: str | None = None  # the context is longer than the model was trained on
    fit: FitPlan | None = None  # what llama-server's --fit would change (vram --fit on)

    @property
    def resolved_gpu_layers(self) -> int:
        """``--ngl`` as llama.cpp counts it (llama_model::n_gpu_layers): -1 means all; with no
        GPU nothing is offloaded (load_tensors: act_gpu_layers is 0 without devices)."""
        if not self.gpus:
            return 0
        ngl = self.config.n_gpu_layers
        return self.n_layer + 1 if ngl < 0 else min(ngl, self.n_layer + 1)

    @property
    def tightest_gpu(self) -> DeviceUsage:
        """The GPU with the least memory left after the headroom: the one the verdict names."""
        gpus = [usage for usage in self.devices if usage.capacity_bytes is not None]
        return min(gpus, key=lambda usage: usage.free_bytes(self.headroom_bytes) or 0)

    def extra_usages(self, device: str) -> list[tuple[ExtraLoad, DeviceUsage]]:
        """Each file loaded beside the model that has buffers on ``device``, with those buffers
        summed per column (they are already in the device's own total)."""
        usages = []
        for load in self.extras:
            parts = {"weights": 0, "kv": 0, "output": 0, "compute": 0}
            on_device = [item for item in load.buffers if item.device == device]
            for item in on_device:
                parts[EXTRA_KIND_COLUMN.get(item.kind, "weights")] += item.n_bytes
            if on_device:
                usages.append((load, DeviceUsage(device, None, parts["weights"], parts["kv"],
                                                 parts["output"], parts["compute"])))
        return usages

    @property
    def kv_totals(self) -> KVCacheTotals:
        caches = self.prediction.kv_caches
        return KVCacheTotals(sum(cache.n_bytes for cache in caches),
                             sum(cache.k_bytes for cache in caches),
                             sum(cache.v_bytes for cache in caches),
                             caches[0].cells if caches else 0,
                             sum(cache.layers for cache in caches))


def device_usage(prediction: MemoryPrediction, gpus: tuple[GPU, ...],
                 extra: tuple[BufferEstimate, ...] = ()) -> tuple[DeviceUsage, ...]:
    """Host first, then every GPU (also those that received nothing); ``extra`` buffers (files
    loaded beside the model) count in each device's total."""
    names = [HOST] + [f"gpu{index}" for index in range(len(gpus))]
    usages = []
    for index, name in enumerate(names):
        totals = {kind: prediction.device_total(name, kind) for kind in KINDS}
        capacity = None if name == HOST else gpus[index - 1].capacity_bytes
        # the recurrent state (RS buffers) is the context memory of recurrent/hybrid models
        memory = totals["kv"] + prediction.device_total(name, "recurrent")
        usages.append(DeviceUsage(name, capacity, totals["model"], memory,
                                  totals["output"], totals["compute"],
                                  sum(item.n_bytes for item in extra if item.device == name)))
    return tuple(usages)


def fits_gpus(prediction: MemoryPrediction, gpus: tuple[GPU, ...], headroom: int,
              extra: tuple[BufferEstimate, ...] = ()) -> bool:
    return all(usage.free_bytes(headroom) >= 0 for usage in device_usage(prediction, gpus, extra)
               if usage.capacity_bytes is not None)


def _fits(gguf: GGUFFile, config: LlamaSettings, gpus: tuple[GPU, ...], headroom: int,
          extras: ExtraFiles | None = None) -> bool:
    extra = extra_buffers(extra_loads(gguf, config, extras))
    return fits_gpus(predict_memory(gguf, config), gpus, headroom, extra)


def max_gpu_layers(gguf: GGUFFile, config: LlamaSettings, gpus: tuple[GPU, ...],
                   headroom: int, n_layer: int, extras: ExtraFiles | None = None) -> int | None:
    """The largest n_gpu_layers (0 .. n_layer + 1, the output head counting as one) that fits;
    None when none does. Counts above the largest whose weights and KV cache alone fit the GPUs
    together are ruled out without simulating the graph; the rest are tried from the top."""
    budget = sum(gpu.capacity_bytes - headroom for gpu in gpus)

    def gpu_bytes(ngl: int) -> int:
        exact = predict_memory(gguf, replace(config, n_gpu_layers=ngl), with_compute=False)
        return sum(exact.device_total(f"gpu{index}") for index in range(len(gpus)))

    top = n_layer + 1
    if gpu_bytes(top) > budget:  # invariant: gpu_bytes(high + 1) > budget or high is the top
        low, high = -1, top - 1  # gpu_bytes(-1) stands for "nothing": always within budget
        while low < high:
            middle = (low + high + 1) // 2
            if gpu_bytes(middle) <= budget:
                low = middle
            else:
                high = middle - 1
        top = low
    for ngl in range(top, -1, -1):
        if _fits(gguf, replace(config, n_gpu_layers=ngl), gpus, headroom, extras):
            return ngl
    return None


def max_context(gguf: GGUFFile, config: LlamaSettings, gpus: tuple[GPU, ...], headroom: int,
                n_ctx_train: int, extras: ExtraFiles | None = None) -> int | None:
    """The longest context that fits with every layer offloaded: the trained maximum itself, or
    the largest multiple of 256 below it; None when not even 256 tokens do."""
    full = replace(config, n_gpu_layers=-1)

    def fits(n_ctx: int) -> bool:
        return _fits(gguf, replace(full, n_ctx=n_ctx), gpus, headroom, extras)

    top = max(n_ctx_train, CTX_PAD)
    if fits(top):  # the trained maximum itself (llama.cpp pads it up to a multiple of 256)
        return top
    if not fits(CTX_PAD):
        return None
    # Below it, multiples of 256 strictly under ``top``; invariant: fits(low * 256).
    low, high = 1, (top - 1) // CTX_PAD
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle * CTX_PAD):
            low = middle
        else:
            high = middle - 1
    return low * CTX_PAD


def plan_grid(gguf: GGUFFile, config: LlamaSettings, gpus: tuple[GPU, ...], headroom: int,
              n_layer: int, n_ctx_train: int | None,
              extras: ExtraFiles | None = None) -> tuple[PlanRow, ...]:
    """Contexts 4k/8k/16k/32k (those within the trained maximum) and the trained maximum,
    each with the largest --ngl that fits."""
    contexts = [n for n in PLAN_CONTEXTS if n_ctx_train is None or n < n_ctx_train]
    if n_ctx_train:
        contexts.append(n_ctx_train)
    rows = []
    for n_ctx in contexts:
        at_ctx = replace(config, n_ctx=n_ctx)
        best = max_gpu_layers(gguf, at_ctx, gpus, headroom, n_layer, extras)
        rows.append(PlanRow(n_ctx, best, best == n_layer + 1))
    return tuple(rows)


def context_warning(gguf: GGUFFile, n_ctx_seq: int, n_ctx_train: int | None) -> str | None:
    """Past the trained maximum llama.cpp only warns (llama_context::llama_context in
    llama-context.cpp: "n_ctx_seq > n_ctx_train -- possible training context overflow") and
    goes on; positions past it are only meaningful with rope scaling (the file's
    ``ARCH.rope.scaling.*`` keys, or --rope-scaling/--rope-freq-scale at load time)."""
    if not n_ctx_train or n_ctx_seq <= n_ctx_train:
        return None
    prefix = f"{gguf.architecture}.rope.scaling."
    keys = sorted(key for key in gguf.metadata if key.startswith(prefix))
    scaling = (", ".join(f"{key} = {gguf.value(key)}" for key in keys) if keys
               else "the file has no rope scaling keys")
    return (f"n_ctx {n_ctx_seq} per sequence exceeds the trained maximum {n_ctx_train}: "
            "llama.cpp warns (possible training context overflow) and allocates it anyway; "
            f"quality past {n_ctx_train} depends on rope scaling ({scaling})")


def audit(gguf: GGUFFile, config: LlamaSettings, gpus: tuple[GPU, ...], headroom: int = 0,
          plan: bool = False, assumptions: tuple[str, ...] = (),
          extras: ExtraFiles | None = None, fit: FitRequest | None = None) -> VramReport:
    """The whole audit for one configuration; searches run only when GPUs are given. ``extras``
    (LoRA adapters, a draft model, a projector) count on the devices they load on, in the fit
    verdict and in every search. ``fit``: also replay llama.cpp's automatic fit (``--fit``)."""
    config = replace(config, gpu_capacities=tuple(gpu.capacity_bytes for gpu in gpus))
    hparams = read_hyperparameters(gguf)
    prediction = predict_memory(gguf, config)
    loads = extra_loads(gguf, config, extras)
    extra = extra_buffers(loads)
    fits = fits_gpus(prediction, gpus, headroom, extra) if gpus else None
    best_ngl = best_ctx = None
    grid = None
    if prediction.unmodelled is not None:
        # The buffers are a lower bound: "does not fit" stands, "fits" cannot be claimed, and
        # the searches would only find limits that may not hold.
        fits = False if fits is False else None
    elif gpus:
        best_ngl = max_gpu_layers(gguf, config, gpus, headroom, hparams.n_layer, extras)
        best_ctx = max_context(gguf, config, gpus, headroom,
                               hparams.n_ctx_train or prediction.context.n_ctx, extras)
        if plan:
            grid = plan_grid(gguf, config, gpus, headroom, hparams.n_layer, hparams.n_ctx_train,
                             extras)
    fitted = None
    if fit is not None and gpus and prediction.unmodelled is None:
        fitted = fit_params(gguf, replace(fit, margins=projector_margins(fit.margins, loads)))
    return VramReport(
        path=gguf.path, architecture=gguf.architecture, n_layer=hparams.n_layer, config=config,
        gpus=gpus, headroom_bytes=headroom, prediction=prediction,
        devices=device_usage(prediction, gpus, extra), fits=fits, max_gpu_layers=best_ngl,
        max_ctx=best_ctx, plan=grid,
        assumptions=tuple(assumptions) + prediction.notes
        + tuple(note for load in loads for note in load.notes), extras=loads,
        context_warning=context_warning(gguf, prediction.context.n_ctx_seq,
                                        hparams.n_ctx_train), fit=fitted)
