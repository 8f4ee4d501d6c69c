"""Steps 3 and 4 of llama.cpp's automatic fit (common/fit.cpp, common_params_fit_impl), traced
by hand on a model whose memory is a few integers, so that every measurement the search makes,
every step line and every result can be written down from the C++ alone.

The model (``Ledger``): each GPU holds 100 MiB before any layer (context and compute); a full
layer is 10 MiB; a dense-only layer (its experts in host memory) keeps 4 MiB; the first partial
layer of a device keeps what its overflow type leaves (attention 3, attention+up 6,
attention+up+gate 8, dense-only 4) and sends the rest of its 10 MiB to its overflow buffer
(another GPU's memory, or the host's). Each scenario's comment is the hand trace through
fit.cpp's loops (line numbers of the llama.cpp vendored by llama-cpp-python 0.3.36); the
expected measurements, lines and results are read off that trace, not off this project's code.
"""

from __future__ import annotations

import pytest

from gguf_inspect.llamacpp.fit_layers import (
    ATTN,
    GATE,
    MOE,
    UP,
    LayerShare,
    _step_size,
    convert_to_full_layers,
    fill_dense_layers,
    layer_choice,
    overflow_pattern,
)

MIB = 1 << 20
BASE, FULL, DENSE = 100, 10, 4
KEPT = {ATTN: 3, UP: 6, GATE: 8, MOE: DENSE}


class Ledger:
    """get_memory_for_layers on the model above; records each call as fit.cpp would log it
    (n_layer, n_part[, overflow type of the first partial layer]) and the overflow buffers."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple, tuple[str, ...]]] = []
        self.lines: list[tuple[str, str]] = []

    def __call__(self, shares: list[LayerShare], buffers: list[str]) -> list[int]:
        self.calls.append((tuple(_key(share) for share in shares), tuple(buffers)))
        mem = [BASE] * len(shares)
        for device, share in enumerate(shares):
            # a wrapped count (n_part 4294967295 on 0 layers) adds no override: the loop of
            # set_ngl_tensor_split_tbo ends at il0 + n_part, which wraps below il0
            partial = share.n_part if share.n_part <= share.n_layer else 0
            mem[device] += FULL * (share.n_layer - partial)
            if partial:
                kept = KEPT[share.overflow]
                mem[device] += kept + DENSE * (partial - 1)
                if buffers[device] != "CPU":  # "CUDA<n>": the rest of that layer lands there
                    mem[int(buffers[device][4:])] += FULL - kept
        return [value * MIB for value in mem]

    def note(self, action: str, outcome: str) -> None:
        self.lines.append((action, outcome))


def _key(share: LayerShare) -> tuple:
    plain = (share.n_layer, share.n_part)
    return plain if share.overflow == MOE else (*plain, share.overflow)


def _shares(*keys: tuple) -> list[LayerShare]:
    return [LayerShare(*key) for key in keys]


def _mib(*values: int) -> list[int]:
    return [value * MIB for value in values]


def _line(mem: int, target: int, verdict: str) -> str:
    return f"{mem}.0 MiB used vs. target {target}.0 MiB: {verdict}"


def _more(gpu: int, kept: str, to: str) -> str:
    """The action of fit.cpp's "try to fit at least part of one more layer"."""
    return f"gpu {gpu}: one more layer keeping {kept}, the rest to {to}"


CPU2 = ("CPU", "CPU")
LOWER, UPPER, BELOW = "fits: new lower bound", "too many: new upper bound", \
    "too many: search below"


# ---- step 3: dense layers back to front (fit.cpp:675-726) -----------------------------------


def test_dense_layers_two_gpus_both_searched():
    """hp_ngl 9 (10 layers with the output), dense, targets 125 and 160 MiB.
    gpu1: all 10 -> 200 > 160; step 10*(160-100)/(200-100) = 6 -> 160 <= 160 fits (the bound is
    inclusive); delta 4, step 4*0/40 = 0 -> clamped to 1 -> 7 layers, 170: upper bound; delta 1.
    gpu0: 10-6 = 4 unassigned -> 140 > 125; step 4*25/40 = 2 -> 120 fits; delta 2, step
    2*5/20 = 0 -> 1 (clamp to delta-1 = 1) -> 3 layers, 130: upper bound; delta 1: 2 layers."""
    ledger = Ledger()
    shares, mem = fill_dense_layers(2, 9, False, _mib(125, 160), ledger, ledger.note)
    assert [_key(share) for share in shares] == [(2, 0), (6, 0)] and mem == _mib(120, 160)
    assert ledger.calls == [(((0, 0), (0, 0)), CPU2), (((0, 0), (10, 0)), CPU2),
                            (((0, 0), (6, 0)), CPU2), (((0, 0), (7, 0)), CPU2),
                            (((4, 0), (6, 0)), CPU2), (((2, 0), (6, 0)), CPU2),
                            (((3, 0), (6, 0)), CPU2)]
    assert ledger.lines == [
        ("gpu 1: all 10 remaining layers", _line(200, 160, BELOW)),
        ("gpu 1: 6 layers", _line(160, 160, LOWER)), ("gpu 1: 7 layers", _line(170, 160, UPPER)),
        ("gpu 0: all 4 remaining layers", _line(140, 125, BELOW)),
        ("gpu 0: 2 layers", _line(120, 125, LOWER)), ("gpu 0: 3 layers", _line(130, 125, UPPER))]


def test_dense_layers_all_on_the_last_gpu():
    """All 10 layers on gpu1 use exactly its target (200 <= 200: taken whole); gpu0 has none
    left to take and is not measured (the `n_layer > 0` test of fit.cpp:686)."""
    ledger = Ledger()
    shares, mem = fill_dense_layers(2, 9, False, _mib(150, 200), ledger, ledger.note)
    assert [_key(share) for share in shares] == [(0, 0), (10, 0)] and mem == _mib(100, 200)
    assert ledger.calls == [(((0, 0), (0, 0)), CPU2), (((0, 0), (10, 0)), CPU2)]
    assert ledger.lines == [("gpu 1: all 10 remaining layers", _line(200, 200, "fits"))]


def test_moe_dense_only_layers_keep_the_output_full():
    """MoE, targets 116 and 130 MiB. gpu1's high: 10 layers, 9 partial (the output layer is
    full) -> 100+10+36 = 146 > 130; step 10*30/46 = 6: 6 layers, the first being the output,
    so 5 partial (n_part += step - 1 while it is 0) -> 130 fits; step 1: 7 layers, n_part
    already > 0 so += 1 -> (7, 6), 134: upper bound. gpu0: 4 unassigned, all partial (not the
    last device) -> 116 <= 116 fits."""
    ledger = Ledger()
    shares, mem = fill_dense_layers(2, 9, True, _mib(116, 130), ledger, ledger.note)
    assert [_key(share) for share in shares] == [(4, 4), (6, 5)] and mem == _mib(116, 130)
    assert ledger.calls == [(((0, 0), (0, 0)), CPU2), (((0, 0), (10, 9)), CPU2),
                            (((0, 0), (6, 5)), CPU2), (((0, 0), (7, 6)), CPU2),
                            (((4, 4), (6, 5)), CPU2)]
    assert ledger.lines == [
        ("gpu 1: all 10 remaining layers", _line(146, 130, BELOW)),
        ("gpu 1: 6 layers", _line(130, 130, LOWER)), ("gpu 1: 7 layers", _line(134, 130, UPPER)),
        ("gpu 0: all 4 remaining layers", _line(116, 116, "fits"))]


def test_moe_one_layer_left_for_the_first_gpu():
    """Targets 120 and 143: gpu1's step 10*43/46 = 9 -> (9, 8), 142 fits, delta 1; gpu0 gets
    the one layer left, partial -> 104 fits."""
    ledger = Ledger()
    shares, mem = fill_dense_layers(2, 9, True, _mib(120, 143), ledger, ledger.note)
    assert [_key(share) for share in shares] == [(1, 1), (9, 8)] and mem == _mib(104, 142)
    assert ledger.calls[-2:] == [(((0, 0), (9, 8)), CPU2), (((1, 1), (9, 8)), CPU2)]
    assert ledger.lines[-1] == ("gpu 0: all 1 remaining layers", _line(104, 120, "fits"))


# ---- step 4: dense-only layers become full, front to back (fit.cpp:735-877) ------------------


def test_full_layers_two_gpus_cross_a_device_then_overflow_to_the_next():
    """Step 3 left gpu0 (4, 4) and gpu1 (6, 5): 116 and 130 MiB; targets 158 and 135.
    id_dense_start 0. gpu0: its high takes gpu0's 4 and gpu1's 5 (the last keeps its output):
    (9, 0) and (1, 0): 190 > 158. step 9*(158-116)/(190-116) = 5: 4 from gpu0 itself, then 1
    from gpu1 (the conversion crosses devices): (5, 0), (5, 4): 150 fits, dense start 1; step
    4*8/40 = 0 -> 1: (6, 0), (4, 3): 160 is the upper bound. One more layer: gpu1 gives one
    dense-only layer, gpu0 takes it as partial, its FFN overflowing to CUDA1: keeping
    attention+up, gpu0 156 < 158 and gpu1 100+10+12+4 = 126 < 135: kept; with the gate too,
    158 < 158 fails (strict here, fit.cpp:828). gpu1 (dense start 1): its high turns its 3
    partial layers full except the output's: (4, 0), 100+40+4 = 144 > 135; step 3*9/18 = 1:
    (4, 2), 132 fits; step 2*3/12 = 0 -> 1: (4, 1), 138: upper bound. One more layer on the
    last device gives and takes the same layer (-1/+1), keeping attention+up: 134 < 135; the
    gate: 136 fails. The last device's overflow stays in host memory."""
    ledger = Ledger()
    shares, overflow, mem = convert_to_full_layers(
        _shares((4, 4), (6, 5)), _mib(116, 130), _mib(158, 135), ["CUDA0", "CUDA1"], ledger,
        ledger.note)
    assert [_key(share) for share in shares] == [(6, 1, UP), (4, 2, UP)]
    assert overflow == ["CUDA1", "CPU"] and mem == _mib(156, 134)
    to_gpu1 = ("CUDA1", "CPU")
    assert ledger.calls == [
        (((9, 0), (1, 0)), CPU2), (((5, 0), (5, 4)), CPU2), (((6, 0), (4, 3)), CPU2),
        (((6, 1, UP), (4, 3)), to_gpu1), (((6, 1, GATE), (4, 3)), to_gpu1),
        (((6, 1, UP), (4, 0)), to_gpu1), (((6, 1, UP), (4, 2)), to_gpu1),
        (((6, 1, UP), (4, 1)), to_gpu1), (((6, 1, UP), (4, 2, UP)), to_gpu1),
        (((6, 1, UP), (4, 2, GATE)), to_gpu1)]
    assert ledger.lines == [
        ("gpu 0: 9 full layers", _line(190, 158, BELOW)),
        ("gpu 0: 5 full layers", _line(150, 158, LOWER)),
        ("gpu 0: 6 full layers", _line(160, 158, UPPER)),
        (_more(0, "attention+up", "CUDA1"), _line(156, 158, "fits")),
        (_more(0, "attention+up+gate", "CUDA1"), _line(158, 158, "no")),
        ("gpu 1: 4 full layers", _line(144, 135, BELOW)),
        ("gpu 1: 2 full layers", _line(132, 135, LOWER)),
        ("gpu 1: 3 full layers", _line(138, 135, UPPER)),
        (_more(1, "attention+up", "CPU"), _line(134, 135, "fits")),
        (_more(1, "attention+up+gate", "CPU"), _line(136, 135, "no"))]


def test_full_layers_one_gpu_all_fit():
    """One GPU, step 3 left (10, 9): 146 MiB; target 200. The high, every layer full, uses
    exactly 200: taken whole (id_dense_start becomes nd - 1 = 0). One more layer: the
    device gives itself its own layer back (n_part 0 - 1 wraps in uint32_t and + 1 wraps back):
    (10, 0), which uses 200, not below 200, keeping attention+up or attention alone."""
    ledger = Ledger()
    shares, overflow, mem = convert_to_full_layers(
        _shares((10, 9)), _mib(146), _mib(200), ["CUDA0"], ledger, ledger.note)
    assert [_key(share) for share in shares] == [(10, 0)] and overflow == ["CPU"]
    assert mem == _mib(200)
    assert ledger.calls == [(((10, 0),), ("CPU",)), (((10, 0, UP),), ("CPU",)),
                            (((10, 0, ATTN),), ("CPU",))]
    assert ledger.lines == [
        ("gpu 0: 10 full layers", _line(200, 200, "fits")),
        (_more(0, "attention+up", "CPU"), _line(200, 200, "no")),
        (_more(0, "attention", "CPU"), _line(200, 200, "no"))]


def _three_gpus(last_target: int) -> Ledger:
    """Step 3 left gpu0 nothing, gpu1 (5, 5) and gpu2 (7, 6) of 12 layers: 100, 120, 134 MiB;
    targets 99, 154 and ``last_target``."""
    ledger = Ledger()
    result = convert_to_full_layers(
        _shares((0, 0), (5, 5), (7, 6)), _mib(100, 120, 134), _mib(99, 154, last_target),
        ["CUDA0", "CUDA1", "CUDA2"], ledger, ledger.note)
    ledger.result = result  # type: ignore[attr-defined]
    return ledger


def test_full_layers_three_gpus_attention_alone_overflows():
    """id_dense_start 1 (gpu0 has no layer). gpu0: high (11, 0), (0, 0), (1, 0): 210 > 99;
    step 11*(99-100)/110: -11/110 truncates to 0 (C division) -> 1: one layer from gpu1:
    (1, 0), (4, 4): 110, upper bound; delta 1. One more layer: gpu1's (4, 4), gpu0's (1, 1)
    overflowing to CUDA1: attention+up 106 and attention 103 both above 99.
    gpu1: high (11, 0), (1, 0): 210 > 154; step 11*34/90 = 4: (5, 1), 144 fits; step 7*10/66
    = 1: its last partial layer, then none from gpu2 (min(0, 6)): (5, 0), 150 fits, dense
    start 2; step 6*4/60 = 0 -> 1: one from gpu2: (6, 0), (6, 5): 160, upper bound. One more
    layer from gpu2, overflowing to CUDA2: attention+up 156 no; attention alone 153 < 154, and
    gpu2 100+10+20+7 = 137 must stay below its target too (fit.cpp:852).
    With gpu2's target 140 it does; gpu2 then: high (6, 0): 100+60+7 = 167 > 140; step
    5*3/30 = 0 -> 1: (6, 4), 143: upper bound; one more layer keeping attention+up: 139 fits,
    +gate: 141 no."""
    ledger = _three_gpus(140)
    shares, overflow, mem = ledger.result  # type: ignore[attr-defined]
    assert [_key(share) for share in shares] == [(0, 0), (6, 1, ATTN), (6, 5, UP)]
    assert overflow == ["CPU", "CUDA2", "CPU"] and mem == _mib(100, 153, 139)
    cpu3, to_gpu1, to_gpu2 = ("CPU",) * 3, ("CUDA1", "CPU", "CPU"), ("CPU", "CUDA2", "CPU")
    assert ledger.calls == [
        (((11, 0), (0, 0), (1, 0)), cpu3), (((1, 0), (4, 4), (7, 6)), cpu3),
        (((1, 1, UP), (4, 4), (7, 6)), to_gpu1), (((1, 1, ATTN), (4, 4), (7, 6)), to_gpu1),
        (((0, 0), (11, 0), (1, 0)), cpu3), (((0, 0), (5, 1), (7, 6)), cpu3),
        (((0, 0), (5, 0), (7, 6)), cpu3), (((0, 0), (6, 0), (6, 5)), cpu3),
        (((0, 0), (6, 1, UP), (6, 5)), to_gpu2), (((0, 0), (6, 1, ATTN), (6, 5)), to_gpu2),
        (((0, 0), (6, 1, ATTN), (6, 0)), to_gpu2), (((0, 0), (6, 1, ATTN), (6, 4)), to_gpu2),
        (((0, 0), (6, 1, ATTN), (6, 5, UP)), to_gpu2),
        (((0, 0), (6, 1, ATTN), (6, 5, GATE)), to_gpu2)]
    assert ledger.lines == [
        ("gpu 0: 11 full layers", _line(210, 99, BELOW)),
        ("gpu 0: 1 full layers", _line(110, 99, UPPER)),
        (_more(0, "attention+up", "CUDA1"), _line(106, 99, "no")),
        (_more(0, "attention", "CUDA1"), _line(103, 99, "no")),
        ("gpu 1: 11 full layers", _line(210, 154, BELOW)),
        ("gpu 1: 4 full layers", _line(144, 154, LOWER)),
        ("gpu 1: 5 full layers", _line(150, 154, LOWER)),
        ("gpu 1: 6 full layers", _line(160, 154, UPPER)),
        (_more(1, "attention+up", "CUDA2"), _line(156, 154, "no")),
        (_more(1, "attention", "CUDA2"), _line(153, 154, "fits")),
        ("gpu 2: 6 full layers", _line(167, 140, BELOW)),
        ("gpu 2: 2 full layers", _line(143, 140, UPPER)),
        (_more(2, "attention+up", "CPU"), _line(139, 140, "fits")),
        (_more(2, "attention+up+gate", "CPU"), _line(141, 140, "no"))]


def test_full_layers_the_next_gpu_must_keep_its_target_too():
    """As above, but gpu2's target is 137: gpu1's attention-only layer leaves gpu1 at 153 <
    154, and puts gpu2 at 137, not below 137: refused, gpu1 stays (5, 0) and gpu2 (7, 6) with
    dense start 2; gpu2 then: high (7, 0): 170 > 137; step 6*3/36 = 0 -> 1: (7, 5),
    100+20+4+16 = 140: upper bound, delta 1; one more layer (its own) keeping attention+up:
    100+10+6+20 = 136 fits; with the gate 138, no."""
    ledger = _three_gpus(137)
    shares, overflow, mem = ledger.result  # type: ignore[attr-defined]
    assert [_key(share) for share in shares] == [(0, 0), (5, 0), (7, 6, UP)]
    assert overflow == ["CPU"] * 3 and mem == _mib(100, 150, 136)
    assert ledger.lines[9] == (_more(1, "attention", "CUDA2"), _line(153, 154, "no"))
    assert ledger.lines[10:] == [
        ("gpu 2: 7 full layers", _line(170, 137, BELOW)),
        ("gpu 2: 2 full layers", _line(140, 137, UPPER)),
        (_more(2, "attention+up", "CPU"), _line(136, 137, "fits")),
        (_more(2, "attention+up+gate", "CPU"), _line(138, 137, "no"))]


def test_the_step_size_wraps_like_uint32_t():
    """uint32_t step_size = int64_t(delta) * (target - mem) / (mem_high - mem): a lower bound
    already above the target gives a negative quotient; C division truncates -11/110 to 0
    (clamped up to 1), and -165/110 to -1, which uint32_t turns into 4294967295 (clamped down to
    delta - 1)."""
    assert _step_size(11, 99, 100, 210) == 1
    assert _step_size(11, 85, 100, 210) == 10


def test_the_last_gpus_output_layer_moves_through_a_wrapped_count():
    """Step 3 left gpu0 (8, 8) and gpu1 (2, 1): 132 and 114 MiB; targets 200 and 120. gpu0's
    high, (9, 0) and gpu1's output alone (1, 0), uses 190: taken whole, dense start 1. One more
    layer: gpu1's (1, 0) gives its layer: n_layer 0, n_part 0 - 1 = 4294967295 (uint32_t; no
    assert on this path of fit.cpp:811-820); gpu0 (10, 1) overflowing to CUDA1: keeping
    attention+up 196 < 200 and gpu1 100+4 = 104 < 120: kept; +gate 198 and 102: kept. gpu1's
    turn: its move is 0 - 1 = 4294967295 layers to itself (a net zero), n_part 0: (0, 0), 102
    MiB fits; no layer left for another one. Everything ends on gpu0."""
    ledger = Ledger()
    shares, overflow, mem = convert_to_full_layers(
        _shares((8, 8), (2, 1)), _mib(132, 114), _mib(200, 120), ["CUDA0", "CUDA1"], ledger,
        ledger.note)
    assert [_key(share) for share in shares] == [(10, 1, GATE), (0, 0)]
    assert overflow == ["CUDA1", "CPU"] and mem == _mib(198, 102)
    wrapped = (0, 0xFFFFFFFF)
    assert ledger.calls == [(((9, 0), (1, 0)), CPU2),
                            (((10, 1, UP), wrapped), ("CUDA1", "CPU")),
                            (((10, 1, GATE), wrapped), ("CUDA1", "CPU")),
                            (((10, 1, GATE), (0, 0)), ("CUDA1", "CPU"))]
    assert [line for _, line in ledger.lines] == [
        _line(190, 200, "fits"), _line(196, 200, "fits"), _line(198, 200, "fits"),
        _line(102, 120, "fits")]
    # what llama.cpp then loads: every layer on gpu0; the partial one is index 9, the output
    # (no blk.9: the override matches nothing); a wrapped count adds no override
    assert layer_choice([LayerShare(10, 1, GATE), LayerShare(0, 0xFFFFFFFF)],
                        ["CUDA1", "CPU"], hp_ngl=9) == layer_choice(
        shares, overflow, hp_ngl=9)
    choice = layer_choice(shares, overflow, hp_ngl=9)
    assert (choice.n_gpu_layers, choice.tensor_split) == (10, (10, 0))
    assert choice.overrides == ((overflow_pattern(9, GATE), "CUDA1"),)


def test_no_conversion_when_the_last_gpu_has_no_layer():
    """id_dense_start stays nd when the last device got no layer in step 3 (its scan stops at
    the first empty device from the back): step 4 measures nothing and changes nothing."""
    ledger = Ledger()
    start = _shares((3, 3), (0, 0))
    shares, overflow, mem = convert_to_full_layers(start, _mib(112, 100), _mib(300, 300),
                                                   ["CUDA0", "CUDA1"], ledger, ledger.note)
    assert (shares, overflow, mem, ledger.calls) == (start, ["CPU", "CPU"], _mib(112, 100), [])


# ---- set_ngl_tensor_split_tbo (fit.cpp:548-586) ------------------------------------------------


def test_overrides_of_three_devices():
    """12 layers over three GPUs: 0, 6 (one partial, attention only, to CUDA2) and 6 (five
    partial, the first keeping attention+up in host memory): il0 starts at 12 - 12 = 0;
    gpu0 adds nothing; gpu1's 5 full layers put its partial one at 5; gpu2's first partial
    one is 6 + 1 = 7, then 8 to 11 send their experts to the host."""
    choice = layer_choice([LayerShare(0, 0), LayerShare(6, 1, ATTN), LayerShare(6, 5, UP)],
                          ["CPU", "CUDA2", "CPU"], hp_ngl=11)
    assert (choice.n_gpu_layers, choice.tensor_split) == (12, (0, 6, 6))
    assert choice.overrides == (
        (r"blk\.5\.ffn_(gate|up|gate_up|down).*", "CUDA2"),
        (r"blk\.7\.ffn_(gate|gate_up|down).*", "CPU"),
        *((rf"blk\.{il}\.ffn_(up|down|gate_up|gate)_(ch|)exps", "CPU") for il in range(8, 12)))


def test_only_the_first_partial_layer_overflows_to_the_next_gpu():
    """Two GPUs, 7 of 7 layers: gpu0 (4, 2) keeping attention+up, its first partial layer 2
    overflowing to CUDA1, its second (3) sending experts to the host; gpu1 (3, 2): layer 4 is
    full, 5 and 6 partial, the first with the default dense-only overflow to the host."""
    choice = layer_choice([LayerShare(4, 2, UP), LayerShare(3, 2)], ["CUDA1", "CPU"], hp_ngl=6)
    moe = lambda il: (rf"blk\.{il}\.ffn_(up|down|gate_up|gate)_(ch|)exps", "CPU")  # noqa: E731
    assert choice.overrides == ((r"blk\.2\.ffn_(gate|gate_up|down).*", "CUDA1"), moe(3), moe(5),
                                moe(6))
    assert (choice.n_gpu_layers, choice.tensor_split) == (7, (4, 3))


def test_fewer_layers_than_the_model_start_further_up():
    """n_gpu_layers 3 of hp_ngl 9 + 1: il0 = 10 - 3 = 7; one device (no split), one full layer
    (7), then partial 8 and 9."""
    choice = layer_choice([LayerShare(3, 2, GATE)], ["CPU"], hp_ngl=9)
    assert choice.tensor_split == () and choice.overrides == (
        (r"blk\.8\.ffn_down.*", "CPU"),
        (r"blk\.9\.ffn_(up|down|gate_up|gate)_(ch|)exps", "CPU"))


def test_a_conversion_step_spans_three_devices():
    """Three GPUs, 10 layers: step 3 left (2, 2), (3, 3), (5, 4): 108, 112, 126 MiB; targets
    170, 150, 150. gpu0 (dense start 0): high (9, 0), (0, 0), (1, 0): 190 > 170; step
    9*62/82 = 6: its own 2, gpu1's 3, then 1 of gpu2's (the count converted so far carries
    over): (6, 0), (0, 0), (4, 3): 160 fits; step 3*10/30 = 1: (7, 0), (3, 2): 170 <= 170
    fits; step 2*0/20 -> 1: 180, upper bound. One more layer: attention+up 176, attention 173:
    no. gpu1 (dense start 2): gpu2's layers but its output: (2, 0), (1, 0): 120 fits; one more
    takes gpu2's output layer: (3, 1) overflowing to CUDA2 and (0, 4294967295): +up 126 and
    gpu2 104, +gate 128 and 102: kept. gpu2: a wrapped move of its own layers, (0, 0): 102 fits;
    it has no layer left for one more (0 > 1 fails)."""
    ledger = Ledger()
    shares, overflow, mem = convert_to_full_layers(
        _shares((2, 2), (3, 3), (5, 4)), _mib(108, 112, 126), _mib(170, 150, 150),
        ["CUDA0", "CUDA1", "CUDA2"], ledger, ledger.note)
    assert [_key(share) for share in shares] == [(7, 0), (3, 1, GATE), (0, 0)]
    assert overflow == ["CPU", "CUDA2", "CPU"] and mem == _mib(170, 128, 102)
    cpu3, to_gpu1, to_gpu2 = ("CPU",) * 3, ("CUDA1", "CPU", "CPU"), ("CPU", "CUDA2", "CPU")
    wrapped = (0, 0xFFFFFFFF)
    assert ledger.calls == [
        (((9, 0), (0, 0), (1, 0)), cpu3), (((6, 0), (0, 0), (4, 3)), cpu3),
        (((7, 0), (0, 0), (3, 2)), cpu3), (((8, 0), (0, 0), (2, 1)), cpu3),
        (((8, 1, UP), (0, 0), (2, 1)), to_gpu1), (((8, 1, ATTN), (0, 0), (2, 1)), to_gpu1),
        (((7, 0), (2, 0), (1, 0)), cpu3), (((7, 0), (3, 1, UP), wrapped), to_gpu2),
        (((7, 0), (3, 1, GATE), wrapped), to_gpu2), (((7, 0), (3, 1, GATE), (0, 0)), to_gpu2)]
    assert ledger.lines[:4] == [
        ("gpu 0: 9 full layers", _line(190, 170, BELOW)),
        ("gpu 0: 6 full layers", _line(160, 170, LOWER)),
        ("gpu 0: 7 full layers", _line(170, 170, LOWER)),
        ("gpu 0: 8 full layers", _line(180, 170, UPPER))]
    assert ledger.lines[-1] == ("gpu 2: 0 full layers", _line(102, 150, "fits"))


def test_the_dense_start_moves_on_when_its_device_is_emptied():
    """Three GPUs, 6 layers: (0, 0), (1, 1), (5, 4): 100, 104, 126 MiB; targets 106, 115,
    130. gpu0: high (5, 0): 150 > 106; step 5*6/50 = 0 -> 1: gpu1's one layer, 110: upper
    bound. One more layer takes gpu1's last partial layer, so the next dense start is gpu2
    (id_dense_start_test++, fit.cpp:818): +up 106 is not below 106; attention alone 103, and
    gpu1 107 < 115: kept. gpu1 (dense start 2): high (4, 0): 100+40+7 = 147 > 115; step
    4*8/40 = 0 -> 1: (1, 0), (4, 3): 117, upper bound; one more from gpu2 overflowing to
    CUDA2: +up 113 and gpu2 100+10+12+4 = 126 < 130: kept; +gate 115, no. gpu2: high (4, 0):
    144 > 130; step 3*4/18 = 0 -> 1: (4, 2), 132: upper bound; one more keeping attention+up
    128: kept; +gate 130: no."""
    ledger = Ledger()
    shares, overflow, mem = convert_to_full_layers(
        _shares((0, 0), (1, 1), (5, 4)), _mib(100, 104, 126), _mib(106, 115, 130),
        ["CUDA0", "CUDA1", "CUDA2"], ledger, ledger.note)
    assert [_key(share) for share in shares] == [(1, 1, ATTN), (1, 1, UP), (4, 3, UP)]
    assert overflow == ["CUDA1", "CUDA2", "CPU"] and mem == _mib(103, 113, 128)
    assert [action for action, _ in ledger.lines] == [
        "gpu 0: 5 full layers", "gpu 0: 1 full layers",
        _more(0, "attention+up", "CUDA1"),
        _more(0, "attention", "CUDA1"),
        "gpu 1: 4 full layers", "gpu 1: 1 full layers",
        _more(1, "attention+up", "CUDA2"),
        _more(1, "attention+up+gate", "CUDA2"),
        "gpu 2: 4 full layers", "gpu 2: 2 full layers",
        _more(2, "attention+up", "CPU"),
        _more(2, "attention+up+gate", "CPU")]


def test_the_last_gpu_keeps_its_output_layer_whole():
    """On the last device "one more layer" needs more than one layer there (fit.cpp:811: the
    output layer is not taken): (1, 0) is only measured once; (2, 1) tries its partial layer."""
    only_output = Ledger()
    convert_to_full_layers(_shares((1, 0)), _mib(110), _mib(115), ["CUDA0"], only_output,
                           only_output.note)
    assert only_output.calls == [(((1, 0),), ("CPU",))]
    two = Ledger()
    shares, _, _ = convert_to_full_layers(_shares((2, 1)), _mib(114), _mib(120), ["CUDA0"],
                                          two, two.note)
    assert two.calls == [(((2, 0),), ("CPU",)), (((2, 0, UP),), ("CPU",)),
                         (((2, 0, ATTN),), ("CPU",))]
    assert [_key(share) for share in shares] == [(2, 0)]  # 120 is not below 120


def test_layer_counts_are_uint32():
    """ngl_t's n_layer and n_part are uint32_t: below zero they wrap."""
    share = LayerShare(-1, -2)
    assert (share.n_layer, share.n_part) == (0xFFFFFFFF, 0xFFFFFFFE) and share.n_full == 1
    assert LayerShare(0, 1).n_full == 0xFFFFFFFF


def test_n_gpu_layers_is_an_int32_sum_of_uint32_counts():
    """set_ngl_tensor_split_tbo: `mparams.n_gpu_layers += ngl_per_device[id].n_layer` adds
    uint32_t counts into an int32_t, so gpu1's 4294967295 (a wrapped move) and gpu2's 1 give
    back 13 + 2^32 = 13 (mod 2^32); il0 = 12 + 1 - 13 = 0; gpu0's partial layer is 12, gpu1's
    n_full brings il0 to 12 + 4294967295 = 11 (uint32_t) and adds nothing; the split keeps the
    raw counts (tensor_split[id] = float(n_layer))."""
    choice = layer_choice([LayerShare(13, 1, GATE), LayerShare(0xFFFFFFFF, 0), LayerShare(1, 0)],
                          ["CUDA1", "CPU", "CPU"], hp_ngl=12)
    assert (choice.n_gpu_layers, choice.tensor_split) == (13, (13, 0xFFFFFFFF, 1))
    assert choice.overrides == ((r"blk\.12\.ffn_down.*", "CUDA1"),)


def test_a_search_that_does_not_settle_stops_after_4096_rounds():
    """fit.cpp's loop has no bound: with a wrapped count its delta can be billions, one layer a
    round when the interpolated step rounds to 0 (a memory that grows by one byte a layer but
    jumps at the high bound). The replay stops after MAX_SEARCH_ROUNDS (4096) with an error
    rather than hang; a search within it (5000 layers would need 4999 rounds, 4000 need 3999)
    ends as the C++ does."""
    from gguf_inspect.llamacpp.fit_layers import MAX_SEARCH_ROUNDS, FitError

    def measure(shares, buffers):
        n_full = shares[0].n_full
        return [10**12 if shares[0].n_part == 0 else n_full]

    def convert(n_layer: int):
        return convert_to_full_layers(_shares((n_layer, n_layer - 1)), [1], [10**6], ["CUDA0"],
                                      measure, lambda action, outcome: None)

    assert MAX_SEARCH_ROUNDS == 4096
    with pytest.raises(FitError) as caught:
        convert(5001)
    assert str(caught.value) == "the search for full layers did not converge"
    shares, _, mem = convert(4001)  # 3999 rounds, each one layer up, the last one fitting
    assert [_key(share) for share in shares][0][:2] == (4001, 1) and mem == [4000]
