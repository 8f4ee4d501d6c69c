"""Steps 3 and 4 of llama.cpp's automatic fit: how many layers each GPU takes, which MoE expert
tensors stay in host memory, and the ``-ot`` overrides and ``-ts`` split that pin the result.

A line-by-line replay of the second half of ``common_params_fit_impl`` (common/fit.cpp in the
llama.cpp vendored by llama-cpp-python 0.3.36): ``get_overflow_pattern``, ``ngl_t``,
``set_ngl_tensor_split_tbo``, the false-position search that fills dense layers back to front
(step 3) and, for a MoE model whose dense weights all fit, the conversion of dense-only layers to
full ones front to back with one partial layer (step 4). Memory comes from a ``measure`` callable
(``llamacpp.fit`` passes the memory model); this module only searches. The C++ does this in
``uint32_t``/``int64_t``; ``c_div``, ``as_uint32`` and ``LayerShare``'s uint32_t counts keep its
truncations and wrap-arounds (one is reached: step 4 taking the last GPU's output layer).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

UINT32_MASK = 0xFFFFFFFF
MAX_PATTERN_LAYERS = 1000  # get_overflow_pattern's n_strings: "at most 1000 model layers"
# set_ngl_tensor_split_tbo also aborts at llama_max_tensor_buft_overrides() == 4096 overrides;
# not restated: one override per partial layer, and layer 1000 fails get_overflow_pattern first.
MAX_SEARCH_ROUNDS = 4096  # the C++ loop has none: after a wrapped count delta can be billions
CPU_BUFFER = "CPU"  # ggml_backend_cpu_buffer_type()
# common_layer_fraction_t: which part of the first partial layer of a device may overflow
ATTN, UP, GATE, MOE = "attention", "attention+up", "attention+up+gate", "dense"
# the pattern that matches all MoE tensors (global_surplus_cpu_moe's pattern_moe_all)
ALL_EXPERTS_PATTERN = r"blk\.\d+\.ffn_(up|down|gate_up|gate)_(ch|)exps"


class FitAbort(Exception):
    """common_params_fit_exception: the fit gives up; llama.cpp loads with what it had."""


class FitError(Exception):
    """std::runtime_error inside the fit (COMMON_PARAMS_FIT_STATUS_ERROR)."""


def c_div(numerator: int, denominator: int) -> int:
    """C++ integer division: truncates towards zero. A zero divisor is undefined behaviour in
    llama.cpp (the process would die); here it is an error of the fit."""
    if denominator == 0:
        raise FitError("division by zero where llama.cpp's fit divides by zero too (undefined "
                       "behaviour in C++: the process usually dies)")
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator >= 0) else -quotient


def as_uint32(value: int) -> int:
    """``uint32_t x = int64_t(...)``: the low 32 bits (a negative value wraps around)."""
    return value & UINT32_MASK


def as_int32(value: int) -> int:
    """``int32_t x += uint32_t(...)``: the low 32 bits read as two's complement."""
    return (value + (1 << 31) & UINT32_MASK) - (1 << 31)


def overflow_pattern(il: int, fraction: str) -> str:
    """get_overflow_pattern: the tensors of layer ``il`` that leave the device."""
    if il >= MAX_PATTERN_LAYERS:
        raise FitError(f"at most {MAX_PATTERN_LAYERS} model layers are supported")
    suffix = {ATTN: r"ffn_(gate|up|gate_up|down).*", UP: r"ffn_(gate|gate_up|down).*",
              GATE: r"ffn_down.*", MOE: r"ffn_(up|down|gate_up|gate)_(ch|)exps"}[fraction]
    return rf"blk\.{il}\.{suffix}"


@dataclass(frozen=True)
class LayerShare:
    """ngl_t: one device's layers, the last ``n_part`` of them partial (experts elsewhere).
    Both counts are uint32_t: arithmetic that goes below zero wraps, as in the C++."""

    n_layer: int = 0
    n_part: int = 0
    overflow: str = MOE  # the first partial layer's overflow_type; later ones are MOE

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_layer", as_uint32(self.n_layer))
        object.__setattr__(self, "n_part", as_uint32(self.n_part))

    @property
    def n_full(self) -> int:
        return as_uint32(self.n_layer - self.n_part)


@dataclass(frozen=True)
class LayerChoice:
    """What set_ngl_tensor_split_tbo writes into llama_model_params."""

    n_gpu_layers: int
    tensor_split: tuple[int, ...]  # layers per device; () for one device
    overrides: tuple[tuple[str, str], ...]  # (pattern, buffer type name)


def layer_choice(shares: list[LayerShare], overflow_buffers: list[str],
                 hp_ngl: int) -> LayerChoice:
    """set_ngl_tensor_split_tbo: n_gpu_layers is the sum of the devices' layers, the split is
    each device's layer count, and every partial layer gets one override: the first partial
    layer of a device sends its ``overflow`` part to ``overflow_buffers[id]``, later ones send
    their experts to the CPU. Layers count from ``hp_ngl + 1 - n_gpu_layers`` up, device by
    device, full layers first. n_gpu_layers is llama_model_params' int32_t, summed from the
    uint32_t counts, so wrapped counts wrap back; ``il0`` and the loop's end ``il0 + n_part``
    are uint32_t (a wrapped n_part ends the loop before it starts)."""
    n_gpu_layers = as_int32(sum(share.n_layer for share in shares))
    il0 = as_uint32(hp_ngl + 1 - n_gpu_layers)
    overrides: list[tuple[str, str]] = []
    for share, buffer in zip(shares, overflow_buffers):
        il0 = as_uint32(il0 + share.n_full)
        for il in range(il0, as_uint32(il0 + share.n_part)):
            first = il == il0
            overrides.append((overflow_pattern(il, share.overflow if first else MOE),
                              buffer if first else CPU_BUFFER))
        il0 = as_uint32(il0 + share.n_part)
    split = tuple(share.n_layer for share in shares) if len(shares) > 1 else ()
    return LayerChoice(n_gpu_layers, split, tuple(overrides))


# measure(shares, overflow_buffers) -> memory per fit device (model + context + compute)
Measure = Callable[[list[LayerShare], list[str]], list[int]]
Note = Callable[[str, str], None]  # (action, outcome) for the fit plan's steps


def _step_size(delta: int, target: int, low: int, high: int) -> int:
    """``uint32_t step_size = int64_t(delta) * (target - mem) / (mem_high - mem)``, then
    clamped to [1, delta - 1]: a guess by linear interpolation (false position)."""
    step = as_uint32(c_div(delta * (target - low), high - low))
    return min(max(step, 1), delta - 1)


def fill_dense_layers(nd: int, hp_ngl: int, moe: bool, targets: list[int],
                      measure: Measure, note: Note) -> tuple[list[LayerShare], list[int]]:
    """Step 3: from the last device to the first, the most layers (of those not yet assigned)
    whose memory stays within the device's target; for a MoE model every layer but the
    output is dense-only (its experts in host memory)."""
    shares = [LayerShare() for _ in range(nd)]
    cpu = [CPU_BUFFER] * nd
    mem = measure(shares, cpu)
    for id_ in range(nd - 1, -1, -1):
        n_unassigned = hp_ngl + 1 - sum(shares[jd].n_layer for jd in range(id_ + 1, nd))
        high = list(shares)
        n_part = (n_unassigned if id_ < nd - 1 else n_unassigned - 1) if moe else 0
        high[id_] = replace(high[id_], n_layer=n_unassigned, n_part=n_part)
        if n_unassigned == 0:
            continue
        mem_high = measure(high, cpu)
        if mem_high[id_] <= targets[id_]:
            shares, mem = high, mem_high
            note(f"gpu {id_}: all {n_unassigned} remaining layers", _used(mem_high, id_,
                                                                         targets, "fits"))
            continue
        note(f"gpu {id_}: all {n_unassigned} remaining layers",
             _used(mem_high, id_, targets, "too many: search below"))
        delta = high[id_].n_layer - shares[id_].n_layer
        while delta > 1:
            step = _step_size(delta, targets[id_], mem[id_], mem_high[id_])
            test = list(shares)
            first_output = id_ == nd - 1 and test[id_].n_part == 0
            test[id_] = replace(test[id_], n_layer=test[id_].n_layer + step,
                                n_part=test[id_].n_part + ((step - 1 if first_output else step)
                                                           if moe else 0))
            mem_test = measure(test, cpu)
            fits = mem_test[id_] <= targets[id_]
            note(f"gpu {id_}: {test[id_].n_layer} layers",
                 _used(mem_test, id_, targets, "fits: new lower bound" if fits
                       else "too many: new upper bound"))
            if fits:
                shares, mem = test, mem_test
            else:
                high, mem_high = test, mem_test
            delta = high[id_].n_layer - shares[id_].n_layer
    return shares, mem


def mib(n_bytes: int) -> str:
    """A size for the fit's step lines: MiB as llama.cpp logs them, one decimal."""
    return f"{n_bytes / (1 << 20):.1f} MiB"


def _used(mem: list[int], id_: int, targets: list[int], verdict: str) -> str:
    return f"{mib(mem[id_])} used vs. target {mib(targets[id_])}: {verdict}"


def convert_to_full_layers(shares: list[LayerShare], mem: list[int], targets: list[int],
                           device_buffers: list[str], measure: Measure, note: Note,
                           ) -> tuple[list[LayerShare], list[str], list[int]]:
    """Step 4 (MoE, all dense weights fit): front to back, each device turns dense-only layers
    (taken from the first device that still has some) into full layers while it stays within
    its target, then tries one more layer whose FFN overflows in part: attention+up (then
    attention+up+gate) stay, the rest goes to the next GPU or the host; failing that only
    attention stays."""
    nd = len(shares)
    overflow = [CPU_BUFFER] * nd
    dense_start = nd
    for id_ in range(nd - 1, -1, -1):
        if shares[id_].n_layer == 0:
            break
        dense_start = id_
    id_ = 0
    while id_ <= dense_start < nd:
        shares, mem, dense_start = _convert_device(id_, shares, mem, dense_start, targets,
                                                   overflow, measure, note)
        if shares[dense_start].n_layer > (0 if id_ < nd - 1 else 1):  # "one more layer"
            shares, overflow, mem, dense_start = _one_more_layer(
                id_, shares, mem, dense_start, targets, overflow, device_buffers, measure, note)
        id_ += 1
    return shares, overflow, mem


def _convert_device(id_: int, shares: list[LayerShare], mem: list[int], dense_start: int,
                    targets: list[int], overflow: list[str], measure: Measure, note: Note,
                    ) -> tuple[list[LayerShare], list[int], int]:
    nd = len(shares)
    high = list(shares)
    for jd in range(dense_start, nd):  # every dense-only layer moved to this device
        move = high[jd].n_layer if jd < nd - 1 else high[jd].n_layer - 1
        high[id_] = replace(high[id_], n_layer=high[id_].n_layer + move)
        high[jd] = replace(high[jd], n_layer=high[jd].n_layer - move, n_part=0)
    dense_start_high = nd - 1
    mem_high = measure(high, overflow)
    if mem_high[id_] <= targets[id_]:
        note(f"gpu {id_}: {high[id_].n_full} full layers", _used(mem_high, id_, targets, "fits"))
        return high, mem_high, dense_start_high
    note(f"gpu {id_}: {high[id_].n_full} full layers",
         _used(mem_high, id_, targets, "too many: search below"))
    delta = high[id_].n_full - shares[id_].n_full
    for _ in range(MAX_SEARCH_ROUNDS):
        if delta <= 1:
            return shares, mem, dense_start
        step = _step_size(delta, targets[id_], mem[id_], mem_high[id_])
        test = list(shares)
        test_start, converted = dense_start, 0
        while test_start < nd:
            convert = min(step - converted, test[test_start].n_part)
            test[test_start] = replace(test[test_start], n_layer=test[test_start].n_layer - convert,
                                       n_part=test[test_start].n_part - convert)
            test[id_] = replace(test[id_], n_layer=test[id_].n_layer + convert)
            converted += convert
            if test[test_start].n_part > 0:
                break
            test_start += 1
        mem_test = measure(test, overflow)
        fits = mem_test[id_] <= targets[id_]
        note(f"gpu {id_}: {test[id_].n_full} full layers",
             _used(mem_test, id_, targets, "fits: new lower bound" if fits
                   else "too many: new upper bound"))
        if fits:
            shares, mem, dense_start = test, mem_test, test_start
        else:
            high, mem_high, dense_start_high = test, mem_test, test_start
        delta = high[id_].n_full - shares[id_].n_full
    raise FitError("the search for full layers did not converge")


def _one_more_layer(id_: int, shares: list[LayerShare], mem: list[int], dense_start: int,
                    targets: list[int], overflow: list[str], device_buffers: list[str],
                    measure: Measure, note: Note,
                    ) -> tuple[list[LayerShare], list[str], list[int], int]:
    nd = len(shares)
    test = list(shares)
    # uint32_t: on one device (id == id_dense_start) the -1 and +1 cancel even from n_part 0; a
    # last GPU left with only its output layer (1, 0) becomes (0, 4294967295): its layer moves
    # to this device and the wrapped count adds no override (fit.cpp:811-820, no assert there)
    test[dense_start] = replace(test[dense_start], n_layer=test[dense_start].n_layer - 1,
                                n_part=test[dense_start].n_part - 1)
    test[id_] = replace(test[id_], n_layer=test[id_].n_layer + 1, n_part=test[id_].n_part + 1)
    test_start = dense_start + 1 if test[dense_start].n_part == 0 else dense_start
    overflow_test = list(overflow)
    if id_ < nd - 1:
        overflow_test[id_] = device_buffers[id_ + 1]

    def fits(fraction: str) -> list[int] | None:
        test[id_] = replace(test[id_], overflow=fraction)
        mem_test = measure(test, overflow_test)
        ok = mem_test[id_] < targets[id_] and (id_ + 1 == nd or mem_test[id_ + 1]
                                                 < targets[id_ + 1])
        note(f"gpu {id_}: one more layer keeping {fraction}, the rest to "
             f"{overflow_test[id_]}", _used(mem_test, id_, targets, "fits" if ok else "no"))
        return mem_test if ok else None

    best = (shares, overflow, mem, dense_start)
    mem_up = fits(UP)
    if mem_up is not None:
        best = (list(test), overflow_test, mem_up, test_start)
        mem_gate = fits(GATE)
        if mem_gate is not None:
            best = (list(test), overflow_test, mem_gate, test_start)
    else:
        mem_attn = fits(ATTN)
        if mem_attn is not None:
            best = (list(test), overflow_test, mem_attn, test_start)
    return best
