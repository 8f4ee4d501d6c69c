"""Rendering of ``gguf-inspect vram``: the per-device table, a bar chart of each device's
breakdown (terminal only), the llama.cpp buffers, the KV caches, the verdict, the plan grid and
the assumptions; and the JSON contract (schema_version 1)."""

from __future__ import annotations

from typing import Any

from gguf_inspect.reports.vram import DeviceUsage, VramReport
from gguf_inspect.core.constants import SCHEMA_VERSION
from gguf_inspect.render.document import KeyValues, Section, Table
from gguf_inspect.render.text import format_mib, json_text
from gguf_inspect.render.vram_fit import fit_json, fit_sections, start_line

BAR_WIDTH = 40
# one letter per share of the bar: Weights, KV cache, Output, Compute; '.' is free capacity
BAR_PARTS = (("W", "weights_bytes"), ("K", "kv_bytes"), ("O", "output_bytes"),
             ("C", "compute_bytes"), ("X", "extra_bytes"))
# Which column of the per-device table each extra file's buffer kind adds to.
def _size(n_bytes: int | None) -> str:
    return "-" if n_bytes is None else format_mib(n_bytes)


def _device_label(report: VramReport, usage: DeviceUsage) -> str:
    if usage.name == "host":
        return "host (RAM)"
    gpu = report.gpus[int(usage.name[3:])]
    return f"{usage.name} ({gpu.name})"


def devices_section(report: VramReport) -> Table:
    rows = []
    for usage in report.devices:
        free = usage.free_bytes(report.headroom_bytes)
        rows.append([_device_label(report, usage), _size(usage.weights_bytes),
                     _size(usage.kv_bytes), _size(usage.output_bytes),
                     _size(usage.compute_bytes), _size(usage.total_bytes),
                     _size(usage.capacity_bytes),
                     "-" if free is None else ("" if free >= 0 else "-") + format_mib(abs(free))])
        rows += _extra_rows(report, usage.name)
    return Table("memory per device", ["device", "weights", "KV cache", "output", "compute",
                                       "total", "capacity", "free after headroom"],
                 rows, numeric_columns=frozenset(range(1, 8)))


def _extra_rows(report: VramReport, device: str) -> list[list[str]]:
    """One row per extra file with buffers on ``device``, its bytes in the matching columns
    (they are already in the device's total above)."""
    return [[f"  + {load.role} {load.path.rsplit('/', 1)[-1]}", _size(usage.weights_bytes),
             _size(usage.kv_bytes), _size(usage.output_bytes), _size(usage.compute_bytes),
             _size(usage.total_bytes), "", ""] for load, usage in report.extra_usages(device)]


def bar(usage: DeviceUsage) -> str:
    """A fixed-width bar: each part's share of the capacity (or of the total for host RAM)."""
    scale = usage.capacity_bytes or usage.total_bytes or 1
    cells = ""
    for letter, attribute in BAR_PARTS:
        # Capped before the string is made: a part 10^9 times the capacity is still one bar.
        share = min(float(BAR_WIDTH + 1), BAR_WIDTH * max(getattr(usage, attribute), 0) / scale)
        cells += letter * min(round(share), BAR_WIDTH + 1 - len(cells))
    if len(cells) > BAR_WIDTH:
        return f"[{cells[:BAR_WIDTH]}]> {usage.total_bytes / scale:.0%} of capacity"
    filler = "." if usage.capacity_bytes else " "
    share = f" {usage.total_bytes / scale:.0%}" if usage.capacity_bytes else ""
    return f"[{cells.ljust(BAR_WIDTH, filler)}]{share}"


def bars_section(report: VramReport) -> Table:
    rows = [[_device_label(report, usage), bar(usage)] for usage in report.devices]
    legend = "W weights, K KV cache, O output, C compute, " + ("X extras, " if report.extras
                                                                   else "") + ". free"
    return Table("breakdown", ["device", legend], rows)


def buffers_section(report: VramReport) -> Table:
    rows = [[item.device, item.buffer, item.kind, f"{item.n_bytes:,}", format_mib(item.n_bytes),
             "exact" if item.exact else "estimate"] for item in _all_buffers(report)]
    return Table("llama.cpp buffers", ["device", "buffer", "kind", "bytes", "size", "figure"], rows,
                 numeric_columns=frozenset({3, 4}))


def _all_buffers(report: VramReport) -> list[Any]:
    """The model's buffers, then each extra file's."""
    return [*report.prediction.buffers, *(item for load in report.extras for item in load.buffers)]


def kv_section(report: VramReport) -> Table:
    rows = [[cache.name or "main", str(cache.cells), str(cache.layers), str(cache.n_seqs),
             f"{cache.type_k} / {cache.type_v}", format_mib(cache.k_bytes),
             format_mib(cache.v_bytes), format_mib(cache.n_bytes)]
            for cache in report.prediction.kv_caches]
    return Table("KV cache", ["cache", "cells", "layers", "streams", "K / V type", "K", "V",
                              "total"], rows, numeric_columns=frozenset({1, 2, 3, 5, 6, 7}))


def verdict_rows(report: VramReport) -> list[tuple[str, str]]:
    context = report.prediction.context
    what = f"n_ctx {context.n_ctx}, --ngl {_layers_text(report)}"
    if report.fits is None and report.gpus and report.prediction.unmodelled:
        return [("verdict", f"CANNOT TELL at {what}: the memory shown is a lower bound"),
                ("why", report.prediction.unmodelled)]
    if report.fits is None:
        return [("verdict", f"no --gpu given: host memory only (no layer offloaded), at n_ctx "
                            f"{context.n_ctx}")]
    headroom = format_mib(report.headroom_bytes)
    tightest = report.tightest_gpu
    free = tightest.free_bytes(report.headroom_bytes) or 0
    if report.fits:
        rows = [("verdict", f"FITS at {what}"),
                ("headroom", f"{format_mib(free)} left on {tightest.name} after keeping "
                             f"{headroom} free")]
    else:
        rows = [("verdict", f"DOES NOT FIT at {what}"),
                ("over by", f"{format_mib(-free)} on {tightest.name} (headroom {headroom})")]
    if report.prediction.unmodelled:
        rows.append(("why", report.prediction.unmodelled))
        return rows
    total = report.n_layer + 1
    rows.append((f"max --ngl at n_ctx {context.n_ctx}",
                 "none: the headroom exceeds a card" if report.max_gpu_layers is None
                 else f"{report.max_gpu_layers} of {total}"))
    rows.append(("max n_ctx at full offload", _longest_context(report.max_ctx,
                                                               context.n_ctx_train)))
    return rows


def _longest_context(max_ctx: int | None, n_ctx_train: int | None) -> str:
    """The search stops at the trained maximum, so reaching it means "at least this much"."""
    if max_ctx is None:
        return "none: not even 256 tokens fit with every layer offloaded"
    if not n_ctx_train:
        return str(max_ctx)
    if max_ctx >= n_ctx_train:
        return f"{max_ctx}: the trained maximum (longer contexts are not searched)"
    return f"{max_ctx} (trained maximum {n_ctx_train})"


def plan_section(report: VramReport) -> Table:
    total = report.n_layer + 1
    rows = [[str(row.n_ctx), "-" if row.max_gpu_layers is None else f"{row.max_gpu_layers}/{total}",
             "yes" if row.fits_full_offload else "no"] for row in report.plan or ()]
    fitted = f"; llama-server --fit: {start_line(report.fit)}" if report.fit else ""
    return Table(f"plan (largest --ngl that fits per context{fitted})",
                 ["n_ctx", "max --ngl", "full offload"], rows,
                 numeric_columns=frozenset({0, 1}))


def _layers_text(report: VramReport) -> str:
    """The layers offloaded; without a GPU, the --ngl asked for (the assumption line's -1) and
    that none of them is offloaded, so the two never seem to disagree."""
    total = report.n_layer + 1
    if report.gpus:
        return f"{report.resolved_gpu_layers} of {total} (blocks + output head)"
    asked = report.config.n_gpu_layers
    return (f"{'all (-1)' if asked < 0 else asked}, but 0 of {total} offloaded: no GPU "
            "(CPU only)")


def config_rows(report: VramReport) -> list[tuple[str, str]]:
    context = report.prediction.context
    config = report.config
    gpus = ", ".join(f"{gpu.name} = {format_mib(gpu.capacity_bytes)}" for gpu in report.gpus)
    return [
        ("model", report.path), ("architecture", report.architecture or "-"),
        ("gpus", gpus or "none (CPU only)"),
        ("n_ctx / per sequence", f"{context.n_ctx} / {context.n_ctx_seq} "
                                 f"(trained {context.n_ctx_train or '-'})"),
        ("n_batch / n_ubatch", f"{context.n_batch} / {context.n_ubatch}"),
        ("sequences", f"{context.n_seq_max}" + (" (unified KV)" if context.kv_unified else "")),
        ("KV cache types", f"{context.type_k} / {context.type_v}"),
        ("flash attention", f"{config.flash_attn} -> {'on' if context.flash_attn else 'off'}"),
        ("--ngl", _layers_text(report)),
        ("mmap", "on" if config.use_mmap else "off"),
        ("headroom", format_mib(report.headroom_bytes)),
    ]


def vram_sections(report: VramReport, bars: bool = True) -> list[Section]:
    sections: list[Section] = [KeyValues("configuration", config_rows(report)),
                               devices_section(report)]
    if bars:
        sections.append(bars_section(report))
    sections += [buffers_section(report), kv_section(report),
                 KeyValues("verdict", verdict_rows(report) + (
                     [("warning", report.context_warning)] if report.context_warning else [])
                     + ([("llama-server --fit", f"would start with {start_line(report.fit)}")]
                        if report.fit else []))]
    if report.plan is not None:
        sections.append(plan_section(report))
    if report.fit is not None:
        sections += fit_sections(report.fit)
    sections.append(Table("assumptions", ["assumption"],
                          [[line] for line in report.assumptions]))
    return sections


# ---- JSON -------------------------------------------------------------------------------------

def _config_json(report: VramReport) -> dict[str, Any]:
    context = report.prediction.context
    config = report.config
    return {
        "n_ctx": context.n_ctx, "n_ctx_seq": context.n_ctx_seq,
        "n_ctx_train": context.n_ctx_train, "n_batch": context.n_batch,
        "n_ubatch": context.n_ubatch, "n_parallel": context.n_seq_max,
        "kv_unified": context.kv_unified, "cache_type_k": context.type_k,
        "cache_type_v": context.type_v, "flash_attn": config.flash_attn,
        "flash_attn_enabled": context.flash_attn, "swa_full": context.swa_full,
        "use_mmap": config.use_mmap, "n_gpu_layers": report.resolved_gpu_layers,
        "n_layer": report.n_layer, "offload_kqv": config.offload_kqv,
        "op_offload": config.op_offload, "n_cpu_moe": config.n_cpu_moe,
        "override_tensor": config.override_tensor, "tensor_split": config.tensor_split,
        "split_mode": config.split_mode, "main_gpu": config.main_gpu,
        "embeddings": config.embeddings, "cpu_repack": config.cpu_repack,
        "gpus": [{"name": gpu.name, "capacity_bytes": gpu.capacity_bytes} for gpu in report.gpus],
        "headroom_bytes": report.headroom_bytes,
    }


def _device_json(usage: DeviceUsage) -> dict[str, Any]:
    return {"name": usage.name, "capacity_bytes": usage.capacity_bytes,
            "weights_bytes": usage.weights_bytes, "kv_bytes": usage.kv_bytes,
            "output_bytes": usage.output_bytes, "compute_bytes": usage.compute_bytes,
            "total_bytes": usage.total_bytes}


def _kv_json(report: VramReport) -> dict[str, Any]:
    caches, totals = report.prediction.kv_caches, report.kv_totals
    return {
        "bytes": totals.n_bytes, "k_bytes": totals.k_bytes, "v_bytes": totals.v_bytes,
        "cells": totals.cells, "layers": totals.layers,
        "caches": [{"name": cache.name, "cells": cache.cells, "layers": cache.layers,
                    "n_seqs": cache.n_seqs, "type_k": cache.type_k, "type_v": cache.type_v,
                    "k_bytes": cache.k_bytes, "v_bytes": cache.v_bytes,
                    "bytes": cache.n_bytes} for cache in caches],
    }


def vram_json(report: VramReport) -> str:
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model": {"path": report.path, "architecture": report.architecture},
        "config": _config_json(report),
        "devices": [_device_json(usage) for usage in report.devices],
        "buffers": [{"device": item.device, "buffer": item.buffer, "kind": item.kind,
                     "bytes": item.n_bytes, "exact": item.exact}
                    for item in _all_buffers(report)],
        "kv_cache": _kv_json(report),
        "fits": report.fits,
        "unmodelled": report.prediction.unmodelled,
        "max_gpu_layers": report.max_gpu_layers,
        "max_ctx": report.max_ctx,
        "context_warning": report.context_warning,
        "assumptions": list(report.assumptions),
    }
    if report.extras:  # files loaded beside the model: their bytes per device, and each file
        for usage, device in zip(report.devices, document["devices"]):
            device["extra_bytes"] = usage.extra_bytes
        document["extras"] = [
            {"role": load.role, "path": load.path, "bytes": load.n_bytes,
             "buffers": [{"device": item.device, "buffer": item.buffer, "kind": item.kind,
                          "bytes": item.n_bytes, "exact": item.exact} for item in load.buffers]}
            for load in report.extras]
    if report.plan is not None:
        document["plan"] = [{"n_ctx": row.n_ctx, "max_gpu_layers": row.max_gpu_layers,
                             "fits_full_offload": row.fits_full_offload} for row in report.plan]
    if report.fit is not None:
        document["fit"] = fit_json(report.fit)
    return json_text(document)
