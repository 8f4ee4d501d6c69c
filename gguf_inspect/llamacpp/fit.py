"""What llama-server does to its parameters before loading: a replay of llama.cpp's automatic
fit (``--fit on``, the default of llama-server and llama-cli) on the memory model, for GPUs that
need not be present.

``common_params_fit_impl`` (common/fit.cpp, llama.cpp vendored by llama-cpp-python 0.3.36)
measures the model with no-alloc loads (``common_get_device_memory_data_impl``: model + context
+ compute per device) and changes only what the user left at its default. Each of those
measurements is ``predict_memory`` here, plus the draft model's buffers (``add_extra_memory``):

1. measure the initial parameters (n_ctx 0 resolved to the trained context times the streams);
   done when every GPU keeps its margin (``--fit-target``) free;
2. if the context was not set, lower it by linear interpolation between the memory at the
   trained maximum and at ``--fit-ctx``, aligned down to 256 x n_streams; one GPU: done;
3. unless ``-ngl``, ``-ts`` or ``-ot``/``--n-cpu-moe`` were set: fill layers back to front
   (``llamacpp.fit_layers``), MoE experts in host memory first;
4. a MoE model whose dense weights fit takes full layers front to back.

The free memory per GPU and the margins are inputs (``FitRequest``); ``fit_command`` gives the
llama-server arguments that pin the result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import partial

from gguf_inspect.core.model import GGUFFile
from gguf_inspect.llamacpp.devices import GPU, KNOWN_GPUS_MIB
from gguf_inspect.llamacpp.extras import ExtraFiles, ExtraLoad, extra_buffers, extra_loads
from gguf_inspect.llamacpp.fit_layers import (
    ALL_EXPERTS_PATTERN,
    CPU_BUFFER,
    FitAbort,
    FitError,
    LayerChoice,
    LayerShare,
    as_uint32,
    c_div,
    convert_to_full_layers,
    fill_dense_layers,
    layer_choice,
    mib,
)
from gguf_inspect.llamacpp.hparams import read_hyperparameters, uint32_key
from gguf_inspect.llamacpp.memory import predict_memory
from gguf_inspect.llamacpp.placement import BufferEstimate
from gguf_inspect.llamacpp.settings import SETTINGS, LlamaSettings, parse_tensor_split

MIB = 1 << 20
UINT32_MAX = 0xFFFFFFFF  # n_ctx_min's "the user asked for the full context" sentinel (-c 0)
DEFAULT_TARGET_MIB = 1024  # common_params::fit_params_target (common/common.h)
DEFAULT_MIN_CTX = 4096  # common_params::fit_params_min_ctx
CTX_ALIGN = 256  # "round down context for CUDA backend"
MAX_DEVICES = 16  # llama_max_devices (src/llama.cpp): --fit-target takes fewer values
# What the CUDA runtime's own context takes before llama.cpp asks cudaMemGetInfo for the free
# memory (ggml_backend_cuda_device_get_memory): kernel images and the primary context, no
# display. Breakdown tables llama.cpp printed on headless cards show 180-270 MiB gone (a
# laptop RTX 2000 Ada 7807 total / 7627 free, an RTX 3090 24124 / 23860, ggml-org/llama.cpp
# #22673 and ollama/ollama#17482); a desktop driving a display loses 1-1.6 GiB more. 512 MiB
# covers the headless case with room for a second small process; give --gpu a size for the
# free memory nvidia-smi shows when the card is shared.
CUDA_CONTEXT_RESERVE_MIB = 512
SUCCESS, FAILURE, ERROR = "success", "failure", "error"  # common_params_fit_status


@dataclass(frozen=True)
class FitRequest:
    """What common_fit_params receives: the parameters as given (n_ctx 0 or None: unset),
    the free memory of each GPU, the margins, and the minimum context."""

    settings: LlamaSettings
    free_bytes: tuple[int, ...]  # per GPU: what cudaMemGetInfo would report
    margins: tuple[int, ...]  # per GPU (--fit-target), any projector already added
    n_ctx_min: int = DEFAULT_MIN_CTX  # --fit-ctx; UINT32_MAX after -c 0
    gpu_layers_set: bool = False  # -ngl was given (n_gpu_layers != llama_model_default_params)
    extras: ExtraFiles | None = None  # only the draft model is measured with the main one


@dataclass(frozen=True)
class FitStep:
    step: int  # 1-4 as fit.cpp numbers them
    action: str
    outcome: str


@dataclass(frozen=True)
class FitDevice:
    name: str  # "gpu0" ...
    free_bytes: int
    margin_bytes: int
    used_bytes: int  # projected with the fitted parameters

    @property
    def projected_free(self) -> int:
        return self.free_bytes - self.used_bytes


@dataclass(frozen=True)
class FitPlan:
    status: str  # success | failure | error
    message: str | None  # why the fit gave up (failure) or broke off (error)
    settings: LlamaSettings  # the parameters llama-server would load with
    n_ctx: int
    n_gpu_layers: int
    tensor_split: tuple[int, ...]
    overrides: tuple[tuple[str, str], ...]
    devices: tuple[FitDevice, ...]
    steps: tuple[FitStep, ...]
    measurements: int  # no-alloc loads the fit made
    command: tuple[str, ...] = ()  # llama-server's arguments that pin this result

    @property
    def fits(self) -> bool:
        """Every GPU keeps its margin: llama.cpp can report success without it (step 3 stops
        at zero layers), and loads anyway."""
        return all(device.projected_free >= device.margin_bytes for device in self.devices)


class _Meter:
    """common_get_device_memory_data_impl plus add_extra_memory: memory per fit device."""

    def __init__(self, gguf: GGUFFile, request: LlamaSettings, names: tuple[str, ...],
                 extras: ExtraFiles | None):
        self.gguf, self.request, self.names = gguf, request, names
        self.draft = (ExtraFiles(draft=extras.draft, draft_gpu_layers=extras.draft_gpu_layers)
                      if extras is not None and extras.draft is not None else None)
        self.draft_cache: dict[int | None, tuple[BufferEstimate, ...]] = {}  # as n_ctx_extra
        self.count = 0

    def _draft(self, n_ctx: int | None) -> tuple[BufferEstimate, ...]:
        """The draft's memory, measured again only when the context it follows changes; its own
        parameters are the ones given, never the fitted ones (common_fit_extra_model)."""
        if self.draft is None:
            return ()
        if n_ctx not in self.draft_cache:
            self.draft_cache[n_ctx] = extra_buffers(extra_loads(
                self.gguf, replace(self.request, n_ctx=n_ctx), self.draft))
        return self.draft_cache[n_ctx]

    def used(self, settings: LlamaSettings) -> tuple[list[int], list[int]]:
        """(model + context + compute, model) per fit device."""
        self.count += 1
        buffers = predict_memory(self.gguf, settings).buffers + self._draft(settings.n_ctx)
        used = [sum(item.n_bytes for item in buffers if item.device == name)
                for name in self.names]
        model = [sum(item.n_bytes for item in buffers if item.device == name
                     and item.kind in ("model", "draft_model")) for name in self.names]
        return used, model


def fit_devices(settings: LlamaSettings) -> tuple[str, ...]:
    """llama_model_n_devices: every GPU, or only the main one with --split-mode none."""
    if settings.split_mode == "none":
        return (f"gpu{settings.main_gpu}",)
    return tuple(f"gpu{index}" for index in range(len(settings.gpu_capacities)))


class _Fit:
    """One run of common_params_fit_impl; ``settings`` is what it has changed so far."""

    def __init__(self, gguf: GGUFFile, request: FitRequest):
        hparams = read_hyperparameters(gguf)
        self.request = request
        self.settings = replace(request.settings, gpu_capacities=request.free_bytes)
        self.names = fit_devices(self.settings)
        self.nd = len(self.names)
        index = [int(name[3:]) for name in self.names]
        self.free = [request.free_bytes[i] for i in index]
        # margins are indexed by the model's device index, as margins_s[id]
        self.margins = [request.margins[i] for i in range(self.nd)]
        if not self.names:
            raise ValueError("the fit needs at least one GPU")
        self.hp_ngl = hparams.n_layer_main  # llama_model_n_layer: the trunk (no MTP load)
        self.n_layer_all = hparams.n_layer
        self.hp_nct = hparams.n_ctx_train or 0
        self.hp_nex = uint32_key(gguf, "expert_count") or 0
        settings = request.settings
        self.n_streams = 1 if settings.kv_unified else max(1, settings.n_parallel)
        self.n_ctx_auto = not settings.n_ctx
        self.meter = _Meter(gguf, self.settings, self.names, request.extras)
        self.steps: list[FitStep] = []
        self.choice: LayerChoice | None = None

    def note(self, step: int, action: str, outcome: str) -> None:
        self.steps.append(FitStep(step, action, outcome))

    def run(self) -> None:
        n_ctx_max = min(self.hp_nct * self.n_streams, UINT32_MAX)
        n_ctx_min = min(self.request.n_ctx_min * self.n_streams, UINT32_MAX)
        if self.n_ctx_auto:  # resolved before measuring anything
            self.settings = replace(self.settings, n_ctx=n_ctx_max)
        used, model = self.meter.used(self.settings)
        if self._step1(used):
            return
        if self._step2(used, model, n_ctx_max, n_ctx_min) and self.nd <= 1:
            return  # "entire model can be fit by reducing context"
        self._check_user_set()
        self._steps_3_and_4()

    def _step1(self, used: list[int]) -> bool:
        """Step 1: are the margins kept with the initial parameters?"""
        short = [self.names[i] for i in range(self.nd) if self.free[i] - used[i] < self.margins[i]]
        state = "; ".join(f"{name} {mib(used[i])} used of {mib(self.free[i])} free, "
                          f"target {mib(self.margins[i])} free"
                          for i, name in enumerate(self.names))
        verdict = ("no changes needed" if not short
                   else f"changes needed (short of the target: {', '.join(short)})")
        self.note(1, f"measure at n_ctx {self.settings.n_ctx}, --ngl "
                     f"{self._ngl_text()}", f"{state}: {verdict}")
        return not short

    def _step2(self, used: list[int], model: list[int], n_ctx_max: int, n_ctx_min: int) -> bool:
        """Step 2: a shorter context, if it was not set; True when the interpolated context is
        projected to fit (the sum over the GPUs)."""
        sum_free = sum(self.free)
        surplus = sum_free - sum(used) - sum(self.margins)
        if surplus >= 0:
            self.note(2, "context", "the total free memory suffices; the context is kept "
                                    "(layers are moved between GPUs instead)")
            return False
        if not self.n_ctx_auto:
            self.note(2, "context", f"set by the user to {self.settings.n_ctx}: no change")
            return False
        if n_ctx_max <= n_ctx_min:
            why = ("the user asked for the full context (-c 0)" if self.request.n_ctx_min
                   == UINT32_MAX else f"the trained context {n_ctx_max} is not above the "
                                      f"minimum {n_ctx_min}")
            self.note(2, "context", f"{why}: no change")
            return False
        sum_used_target = sum_free - sum(self.margins)
        if self.nd > 1:  # whole layers (MoE: tensors, ~1/3 layer) waste ~0.5 per device
            n_gpu_layers = self.settings.n_gpu_layers
            divisor = min(as_uint32(n_gpu_layers), self.hp_ngl)  # uint32_t(n_gpu_layers)
            per_layer = c_div(sum(model), divisor)
            sum_used_target -= c_div((self.nd + 1) * per_layer, 2 if self.hp_nex == 0 else 6)
        self.settings = replace(self.settings, n_ctx=n_ctx_min)
        used_min = sum(self.meter.used(self.settings)[0])
        if sum_used_target <= used_min:
            self.note(2, f"measure at the minimum context {n_ctx_min}",
                      f"{mib(used_min)} used, target {mib(sum_used_target)}: "
                      f"context {n_ctx_min}, layers must move too")
            return False
        n_ctx = n_ctx_min + c_div((n_ctx_max - n_ctx_min) * (sum_used_target - used_min),
                                  sum(used) - used_min)
        align = CTX_ALIGN * self.n_streams
        n_ctx = max(n_ctx - n_ctx % align, n_ctx_min)
        self.settings = replace(self.settings, n_ctx=n_ctx)
        self.note(2, f"measure at the minimum context {n_ctx_min}; interpolate",
                  f"{mib(used_min)} at {n_ctx_min}, {mib(sum(used))} at "
                  f"{n_ctx_max}, target {mib(sum_used_target)}: n_ctx {n_ctx} "
                  f"(aligned down to {align})"
                  + (": fits by the context alone" if self.nd <= 1 else ""))
        return True

    def _ngl_text(self) -> str:
        ngl = self.settings.n_gpu_layers
        return "all" if ngl < 0 else str(ngl)

    def _check_user_set(self) -> None:
        """What step 3 may not touch: it gives up rather than override the user."""
        settings = self.settings
        if self.request.gpu_layers_set:
            raise FitAbort(f"n_gpu_layers already set by user to {self._ngl_text()}, abort")
        if self.nd > 1 and any(parse_tensor_split(settings.tensor_split)):
            raise FitAbort("model_params::tensor_split already set by user, abort")
        if self.nd > 1 and settings.split_mode == "row":
            raise FitAbort("changing weight allocation for LLAMA_SPLIT_MODE_ROW not "
                           "implemented, abort")
        if settings.override_tensor or settings.n_cpu_moe:
            raise FitAbort("model_params::tensor_buft_overrides already set by user, abort")

    def _layers_settings(self, choice: LayerChoice) -> LlamaSettings:
        """The parameters with set_ngl_tensor_split_tbo's choice written in."""
        split = ",".join(str(n) for n in choice.tensor_split) or self.settings.tensor_split
        return replace(self.settings, n_gpu_layers=choice.n_gpu_layers, tensor_split=split,
                       override_tensor=",".join(f"{p}={b}" for p, b in choice.overrides))

    def _measure(self, shares: list[LayerShare], overflow: list[str]) -> list[int]:
        choice = layer_choice(shares, overflow, self.hp_ngl)
        return self.meter.used(self._layers_settings(choice))[0]

    def _surplus_cpu_moe(self) -> int:
        """global_surplus_cpu_moe: the free memory left on all GPUs together with every MoE
        expert tensor in host memory."""
        cpu_moe = replace(self.settings, override_tensor=f"{ALL_EXPERTS_PATTERN}={CPU_BUFFER}")
        surplus = sum(self.free) - sum(self.meter.used(cpu_moe)[0]) - sum(self.margins)
        self.note(3, "measure with every MoE expert tensor in host memory",
                  f"{'surplus' if surplus > 0 else 'deficit'} of {mib(abs(surplus))} with only "
                  "dense weights on the GPUs")
        return surplus

    def _steps_3_and_4(self) -> None:
        targets = [free - margin for free, margin in zip(self.free, self.margins)]
        moe = self.hp_nex > 0
        surplus_cpu_moe = self._surplus_cpu_moe() if moe else 0
        shares, mem = fill_dense_layers(self.nd, self.hp_ngl, moe, targets, self._measure,
                                        partial(self.note, 3))
        overflow = [CPU_BUFFER] * self.nd
        if surplus_cpu_moe > 0:  # a MoE model whose dense weights fit with room to spare
            buffers = [f"CUDA{name[3:]}" for name in self.names]
            shares, overflow, mem = convert_to_full_layers(shares, mem, targets, buffers,
                                                           self._measure, partial(self.note, 4))
        self.choice = layer_choice(shares, overflow, self.hp_ngl)
        self.settings = self._layers_settings(self.choice)


def fit_params(gguf: GGUFFile, request: FitRequest) -> FitPlan:
    """common_fit_params: run the fit; a give-up (failure) or an error keeps what was changed
    before it, as llama.cpp then loads with those parameters."""
    fit = _Fit(gguf, request)
    status, message = SUCCESS, None
    try:
        fit.run()
    except FitAbort as abort:
        status, message = FAILURE, str(abort)
    except FitError as error:
        status, message = ERROR, str(error)
    settings = fit.settings
    used = fit.meter.used(settings)[0]
    devices = tuple(FitDevice(name, fit.free[i], fit.margins[i], used[i])
                    for i, name in enumerate(fit.names))
    choice = fit.choice  # when set, settings.n_gpu_layers is already its n_gpu_layers
    n_gpu_layers = _resolved_ngl(settings.n_gpu_layers, fit.n_layer_all)
    plan = FitPlan(status, message, settings, settings.n_ctx or 0, n_gpu_layers,
                   choice.tensor_split if choice else (),
                   choice.overrides if choice else (), devices, tuple(fit.steps),
                   fit.meter.count - 1)
    return replace(plan, command=fit_command(gguf.path, plan, extra_args(request.extras)))


def _resolved_ngl(n_gpu_layers: int, n_layer_all: int) -> int:
    """llama_model::n_gpu_layers: -1 (auto) is every block and the output layer."""
    return min(n_gpu_layers, n_layer_all + 1) if n_gpu_layers >= 0 else n_layer_all + 1


# ---- the command line that pins the result ----------------------------------------------------

# Written out in any case: the fitted ones, and -np (llama-server's default is "auto": four
# slots in one unified cache, not the one sequence of llama_context_default_params).
_PINNED = frozenset({"n_ctx", "n_gpu_layers", "tensor_split", "override_tensor", "n_parallel"})


def fit_command(model_path: str, plan: FitPlan, extra_args: tuple[str, ...] = ()
                ) -> tuple[str, ...]:
    """llama-server's arguments for the fitted parameters, with ``-fit off`` so that a later
    start loads exactly this (common/arg.cpp spellings); the other settings only where they
    differ from llama.cpp's defaults."""
    settings = plan.settings
    args = ["llama-server", "-m", model_path, "-c", str(plan.n_ctx),
            "-ngl", str(plan.n_gpu_layers), "-np", str(settings.n_parallel)]
    if plan.tensor_split:
        args += ["-ts", ",".join(str(n) for n in plan.tensor_split)]
    elif settings.tensor_split:
        args += ["-ts", settings.tensor_split]
    overrides = ",".join(f"{pattern}={buffer}" for pattern, buffer in plan.overrides)
    if overrides or settings.override_tensor:
        args += ["-ot", overrides or settings.override_tensor]
    for row in SETTINGS:
        value = getattr(settings, row.name)
        # against llama-server's defaults (a plan measured with a full-size SWA cache says
        # --swa-full: llama-server's own default is off)
        if row.name in _PINNED or row.llama_flag is None or value == row.llama_server_default:
            continue
        flag = row.llama_flag.split(", ")[0]
        if isinstance(value, bool):
            if row.off_switch or value:  # --no-mmap, -nkvo ... or a switch turned on
                args.append(flag)
            continue
        args += [flag, str(value)]
    return tuple(args) + tuple(extra_args) + ("-fit", "off")


# ---- what the fit is given ---------------------------------------------------------------------


def assumed_free(gpus: tuple[GPU, ...]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The free memory llama.cpp would measure on each GPU: a size as given, a named card its
    total less the CUDA context reserve; and the assumption line for each named card."""
    free, lines = [], []
    for index, gpu in enumerate(gpus):
        if gpu.name in KNOWN_GPUS_MIB:
            free.append(gpu.capacity_bytes - CUDA_CONTEXT_RESERVE_MIB * MIB)
            lines.append(f"fit: gpu{index} ({gpu.name}) has {free[-1] // MIB} MiB free: "
                         f"{mib(gpu.capacity_bytes)} total less {CUDA_CONTEXT_RESERVE_MIB}"
                         " MiB the CUDA context takes before llama.cpp measures (headless card; "
                         "give --gpu a size for what nvidia-smi shows free)")
        else:
            free.append(gpu.capacity_bytes)
    return tuple(free), tuple(lines)


def parse_fit_target(value: str | None, n_gpus: int) -> tuple[int, ...]:
    """``--fit-target MiB0,MiB1,...`` as common/arg.cpp reads it: split on , or /, one value is
    broadcast, otherwise one per device and the rest keep the default; ValueError."""
    margins = [DEFAULT_TARGET_MIB * MIB] * n_gpus
    if value is None:
        return tuple(margins)
    parts = re.split(r"[,/]+", value.strip())
    if len(parts) >= MAX_DEVICES:
        raise ValueError(f"got {len(parts)} input configs, but system only has {MAX_DEVICES} "
                         "devices")
    if not all(part.isdigit() for part in parts):
        raise ValueError(f"expected MiB values like 1024 or 2048,512, got {value!r}")
    if len(parts) == 1:
        return (int(parts[0]) * MIB,) * n_gpus
    for index, part in enumerate(parts[:n_gpus]):
        margins[index] = int(part) * MIB
    return tuple(margins)


def projector_margins(margins: tuple[int, ...], loads: tuple[ExtraLoad, ...]) -> tuple[int, ...]:
    """llama-server adds the projector's memory (mtmd_get_memory_usage) to the target of the
    device it loads on (server_context::load_model, tools/server/server-context.cpp) rather than
    measuring it with the model."""
    added = list(margins)
    for load in loads:
        if load.role != "mmproj":
            continue
        for item in load.buffers:
            if item.device.startswith("gpu") and int(item.device[3:]) < len(added):
                added[int(item.device[3:])] += item.n_bytes
    return tuple(added)


def extra_args(extras: ExtraFiles | None) -> tuple[str, ...]:
    """The extra files' llama-server arguments (common/arg.cpp spellings)."""
    if not extras:
        return ()
    args: list[str] = []
    for adapter, scale in extras.loras:
        args += (["--lora", adapter.path] if scale == 1.0
                 else ["--lora-scaled", f"{adapter.path}:{scale:g}"])
    if extras.draft is not None:
        args += ["-md", extras.draft.path]
        if extras.draft_gpu_layers is not None:
            args += ["-ngld", str(extras.draft_gpu_layers)]
    if extras.mmproj is not None:
        args += ["--mmproj", extras.mmproj.path]
        if not extras.mmproj_offload:
            args.append("--no-mmproj-offload")
    return tuple(args)
