"""Each rule of steps 1 to 4 of llama.cpp's automatic fit (common_params_fit_impl,
common/fit.cpp of the llama.cpp vendored by llama-cpp-python 0.3.36) as ``llamacpp.fit`` wires
it: the margins' bounds, step 2's branches and its interpolation on several GPUs (dense and MoE,
-ngl given), what the user set, the MoE surplus that decides step 4, the devices taking part,
the draft's memory, and the count of measurements.

Expected values are fit.cpp's formulas worked here on ``predict_memory``'s measurements (the
memory model, judged against real loads elsewhere); the layer searches themselves are traced by
hand in tests/test_fit_layers.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from gguf_inspect.llamacpp.extras import ExtraFiles, extra_buffers, extra_loads
from gguf_inspect.llamacpp.devices import GPU, KNOWN_GPUS_MIB
from gguf_inspect.llamacpp.extras import ExtraLoad
from gguf_inspect.llamacpp.fit import (
    UINT32_MAX,
    FitDevice,
    FitRequest,
    assumed_free,
    fit_params,
    parse_fit_target,
    projector_margins,
)
from gguf_inspect.llamacpp.placement import BufferEstimate
from gguf_inspect.llamacpp.fit_layers import (
    ALL_EXPERTS_PATTERN,
    convert_to_full_layers,
    fill_dense_layers,
    layer_choice,
)
from gguf_inspect.llamacpp.memory import predict_memory
from gguf_inspect.llamacpp.settings import LlamaSettings
from tests.gpu_shapes import llama31_8b, small_moe
from tests.test_fit import _mib

MIB, GIB = 1 << 20, 1 << 30
TARGET = 1024 * MIB
GPUS = ("gpu0", "gpu1")


@pytest.fixture(scope="module")
def llama8b():
    return llama31_8b()


@pytest.fixture(scope="module")
def moe12():
    """A 12-block MoE trained at 32k, so that step 2 has a context to lower."""
    return small_moe(12, 32768)


def used(gguf, settings: LlamaSettings, devices=GPUS) -> list[int]:
    """common_get_device_memory_data_impl: model + context + compute per device."""
    prediction = predict_memory(gguf, settings)
    return [prediction.device_total(device) for device in devices]


def model_bytes(gguf, settings: LlamaSettings, devices=GPUS) -> int:
    prediction = predict_memory(gguf, settings)
    return sum(prediction.device_total(device, "model") for device in devices)


def steps(plan) -> list[tuple[int, str, str]]:
    return [(step.step, step.action, step.outcome) for step in plan.steps]


# ---- step 1: are the margins kept? (fit.cpp:322-357) ---------------------------------------


def test_exactly_the_margin_free_needs_no_change(llama8b):
    """projected_free >= margin is enough (fit.cpp:337); one byte less and step 2 starts."""
    full = used(llama8b, LlamaSettings(n_ctx=131072, gpu_capacities=(GIB,)), ("gpu0",))[0]
    exact = fit_params(llama8b, FitRequest(LlamaSettings(n_ctx=0), (full + TARGET,), (TARGET,)))
    assert [s[0] for s in steps(exact)] == [1] and exact.n_ctx == 131072
    assert exact.measurements == 1 and exact.devices == (
        FitDevice("gpu0", full + TARGET, TARGET, full),)
    short = fit_params(llama8b, FitRequest(LlamaSettings(n_ctx=0), (full + TARGET - 1,),
                                           (TARGET,)))
    assert [s[0] for s in steps(short)] == [1, 2] and short.n_ctx < 131072
    assert short.measurements == 2  # the initial parameters, then the minimum context


def test_given_layers_are_measured_and_named(llama8b):
    """Step 1 measures what was given (-ngl 0 here: no layer on the GPU); plenty free."""
    plan = fit_params(llama8b, FitRequest(LlamaSettings(n_ctx=4096, n_gpu_layers=0),
                                          (24 * GIB,), (TARGET,), gpu_layers_set=True))
    measured = used(llama8b, LlamaSettings(n_ctx=4096, n_gpu_layers=0,
                                           gpu_capacities=(24 * GIB,)), ("gpu0",))[0]
    assert steps(plan) == [(1, "measure at n_ctx 4096, --ngl 0",
                            f"gpu0 {_mib(measured)} used of {_mib(24 * GIB)} free, target "
                            f"{_mib(TARGET)} free: no changes needed")]
    assert plan.n_gpu_layers == 0  # llama_model::n_gpu_layers keeps a given 0


def test_more_layers_than_the_model_resolve_to_all(llama8b):
    """-ngl 40 on a 32-block model: llama.cpp offloads the 33 it has (blocks + output)."""
    plan = fit_params(llama8b, FitRequest(LlamaSettings(n_ctx=4096, n_gpu_layers=40),
                                          (24 * GIB,), (TARGET,), gpu_layers_set=True))
    assert (plan.status, plan.n_gpu_layers) == ("success", 33)


# ---- step 2 on several GPUs (fit.cpp:359-447) ------------------------------------------------


def _two_gpu_context(gguf, settings: LlamaSettings, free, n_ctx_max: int, divisor: int,
                     per_device: int, n_ctx_min: int = 4096) -> tuple[int, int, int, int]:
    """fit.cpp's interpolation for two GPUs: the target less (nd + 1) x model per layer /
    per_device, the model summed over the GPUs at the initial parameters."""
    at_max = replace(settings, n_ctx=n_ctx_max, gpu_capacities=free)
    used_max = sum(used(gguf, at_max))
    used_min = sum(used(gguf, replace(at_max, n_ctx=n_ctx_min)))
    target = sum(free) - 2 * TARGET
    target -= (3 * (model_bytes(gguf, at_max) // divisor)) // per_device
    n_ctx = n_ctx_min + (n_ctx_max - n_ctx_min) * (target - used_min) // (used_max - used_min)
    return max(n_ctx - n_ctx % 256, n_ctx_min), used_min, used_max, target


def test_two_gpus_lower_the_context_then_move_layers(llama8b):
    """Dense, nothing given: the model per layer divides by min(uint32_t(-1), hp_ngl) = 32
    and the waste term by 2; on several GPUs step 2 does not return (fit.cpp:431), so step 3
    still fills layers; the step-2 line has no "fits by the context alone"."""
    free = (6 * GIB, 3 * GIB)
    plan = fit_params(llama8b, FitRequest(LlamaSettings(n_ctx=0), free, (TARGET, TARGET)))
    n_ctx, used_min, used_max, target = _two_gpu_context(
        llama8b, LlamaSettings(), free, 131072, 32, 2)
    at_max = used(llama8b, LlamaSettings(n_ctx=131072, gpu_capacities=free))
    assert plan.n_ctx == n_ctx and plan.status == "success"
    assert steps(plan)[:2] == [
        (1, "measure at n_ctx 131072, --ngl all",
         f"gpu0 {_mib(at_max[0])} used of {_mib(free[0])} free, target {_mib(TARGET)} free; "
         f"gpu1 {_mib(at_max[1])} used of {_mib(free[1])} free, target {_mib(TARGET)} free: "
         "changes needed (short of the target: gpu0, gpu1)"),
        (2, "measure at the minimum context 4096; interpolate",
         f"{_mib(used_min)} at 4096, {_mib(used_max)} at 131072, target {_mib(target)}: "
         f"n_ctx {n_ctx} (aligned down to 256)")]
    step3 = [s for s in plan.steps if s.step == 3]
    assert step3 and len(plan.steps) == 2 + len(step3)
    # one measurement per line, and step 3's first, with no layer on any GPU
    assert plan.measurements == len(plan.steps) + 1


def test_given_layers_divide_the_model_per_layer(llama8b):
    """-ngl 16 given on two GPUs with the context unset: step 2 still runs, the model per
    layer dividing by min(16, 32); then the fit gives up rather than change -ngl."""
    free = (6 * GIB, 3 * GIB)
    plan = fit_params(llama8b, FitRequest(LlamaSettings(n_ctx=0, n_gpu_layers=16), free,
                                          (TARGET, TARGET), gpu_layers_set=True))
    n_ctx, *_ = _two_gpu_context(llama8b, LlamaSettings(n_gpu_layers=16), free, 131072, 16, 2)
    assert (plan.status, plan.n_ctx, plan.n_gpu_layers) == ("failure", n_ctx, 16)
    assert plan.message == "n_gpu_layers already set by user to 16, abort"
    assert plan.measurements == 2


def test_no_layer_given_on_two_gpus_divides_by_zero(llama8b):
    """-ngl 0 on two GPUs short of memory with the context unset: fit.cpp:416 divides the
    model by min(0, hp_ngl) = 0, undefined behaviour (an integer division by zero kills
    llama-server); the replay stops there with an error, the context resolved to the maximum."""
    plan = fit_params(llama8b, FitRequest(LlamaSettings(n_ctx=0, n_gpu_layers=0),
                                          (GIB, GIB), (TARGET, TARGET), gpu_layers_set=True))
    assert (plan.status, plan.n_ctx, plan.n_gpu_layers) == ("error", 131072, 0)
    assert plan.message == ("division by zero where llama.cpp's fit divides by zero too "
                            "(undefined behaviour in C++: the process usually dies)")


def test_moe_on_two_gpus_counts_a_third_of_a_layer_wasted(moe12):
    """MoE (expert_count 8): the waste term divides by 6, not 2 (whole tensors, about a third
    of a layer, fit.cpp:414-417)."""
    free = (256 * MIB, 256 * MIB)  # where /7 would give 256 tokens more
    margins = (8 * MIB, 8 * MIB)
    plan = fit_params(moe12, FitRequest(LlamaSettings(n_ctx=0), free, margins))
    at_max = LlamaSettings(n_ctx=32768, gpu_capacities=free)
    used_max, used_min = sum(used(moe12, at_max)), sum(used(moe12, replace(at_max, n_ctx=4096)))
    target = sum(free) - sum(margins) - (3 * (model_bytes(moe12, at_max) // 12)) // 6
    assert used_min < target < used_max
    n_ctx = 4096 + (32768 - 4096) * (target - used_min) // (used_max - used_min)
    assert plan.n_ctx == max(n_ctx - n_ctx % 256, 4096)


def test_a_total_surplus_keeps_the_context(llama8b):
    """Two GPUs short on one device but with room in total (global_surplus = 0 is not < 0,
    fit.cpp:368): the context stays, layers move."""
    free = (6 * GIB, 24 * GIB)
    settings = LlamaSettings(n_ctx=8192)
    at_start = used(llama8b, replace(settings, gpu_capacities=free))
    margins = (free[0] - at_start[0] + MIB, free[1] - at_start[1] - MIB)  # surplus exactly 0
    plan = fit_params(llama8b, FitRequest(settings, free, margins))
    assert steps(plan)[1] == (2, "context", "the total free memory suffices; the context is "
                                            "kept (layers are moved between GPUs instead)")
    assert plan.n_ctx == 8192 and {s.step for s in plan.steps} == {1, 2, 3}


# ---- step 2 on one GPU: each branch's line ----------------------------------------------------


def test_the_context_branches_say_why(llama8b):
    one = lambda settings, **fields: fit_params(  # noqa: E731
        llama8b, FitRequest(settings, (4 * GIB,), (TARGET,), **fields))
    assert steps(one(LlamaSettings(n_ctx=8192)))[1] == (
        2, "context", "set by the user to 8192: no change")
    assert steps(one(LlamaSettings(n_ctx=0), n_ctx_min=UINT32_MAX))[1] == (
        2, "context", "the user asked for the full context (-c 0): no change")
    # n_ctx_max <= n_ctx_min: the trained 131072 is not above a minimum of 131072
    assert steps(one(LlamaSettings(n_ctx=0), n_ctx_min=131072))[1] == (
        2, "context", "the trained context 131072 is not above the minimum 131072: no change")


def test_a_target_met_only_at_the_minimum_context_moves_layers(llama8b):
    """sum_used_target > used at the minimum context is needed to interpolate (fit.cpp:425):
    a target exactly at the minimum context's use keeps n_ctx_min and goes on to the layers."""
    free = 6 * GIB
    at_min = used(llama8b, LlamaSettings(n_ctx=4096, gpu_capacities=(free,)), ("gpu0",))[0]
    plan = fit_params(llama8b, FitRequest(LlamaSettings(n_ctx=0), (free,), (free - at_min,)))
    assert steps(plan)[1] == (2, "measure at the minimum context 4096",
                              f"{_mib(at_min)} used, target {_mib(at_min)}: context 4096, "
                              "layers must move too")
    assert plan.n_ctx == 4096 and plan.steps[2].step == 3


def test_a_unified_cache_keeps_one_stream(llama8b):
    """--kv-unified: n_streams 1 whatever -np says, so n_ctx_max is the trained context
    (not four times it) and the alignment is 256."""
    plan = fit_params(llama8b, FitRequest(LlamaSettings(n_ctx=0, n_parallel=4, kv_unified=True),
                                          (16 * GIB,), (TARGET,)))
    assert steps(plan)[0][1] == "measure at n_ctx 131072, --ngl all"
    assert plan.n_ctx % 256 == 0 and 4096 < plan.n_ctx < 131072


# ---- what the user set: the fit gives up (fit.cpp:449-473) ------------------------------------


@pytest.mark.parametrize("given, n_gpus, message", [
    ({"tensor_split": "1,1"}, 2, "model_params::tensor_split already set by user, abort"),
    ({"split_mode": "row"}, 2, "changing weight allocation for LLAMA_SPLIT_MODE_ROW not "
                               "implemented, abort"),
    ({"n_cpu_moe": 1}, 1, "model_params::tensor_buft_overrides already set by user, abort"),
    ({"tensor_split": "1"}, 1, None),  # one GPU: the split and row mode are not looked at
    ({"split_mode": "row"}, 1, None),
])
def test_what_the_user_set(llama8b, given, n_gpus, message):
    free = (3 * GIB,) * n_gpus
    plan = fit_params(llama8b, FitRequest(LlamaSettings(n_ctx=4096, **given), free,
                                          (TARGET,) * n_gpus))
    assert plan.message == message
    assert plan.status == ("success" if message is None else "failure")


def test_no_gpu_is_refused(llama8b):
    with pytest.raises(ValueError, match="^the fit needs at least one GPU$"):
        fit_params(llama8b, FitRequest(LlamaSettings(n_ctx=4096), (), ()))


def test_split_mode_none_fits_the_main_gpu_alone(llama8b):
    """llama_model_n_devices is 1 with --split-mode none: only the main GPU is fitted; its
    margin is margins[0] (fit.cpp indexes the margins by the model's device index)."""
    free = (24 * GIB, 3 * GIB)
    plan = fit_params(llama8b, FitRequest(LlamaSettings(n_ctx=4096, split_mode="none",
                                                        main_gpu=1), free, (TARGET, 5 * MIB)))
    assert [device.name for device in plan.devices] == ["gpu1"]
    assert plan.devices[0].free_bytes == 3 * GIB and plan.devices[0].margin_bytes == TARGET
    assert plan.tensor_split == () and 0 < plan.n_gpu_layers < 33


# ---- steps 3 and 4 for MoE: the surplus with experts in host memory ----------------------------


@pytest.mark.parametrize("surplus", [0, 1])
def test_step_4_needs_a_surplus_with_the_experts_in_host_memory(moe12, surplus):
    """global_surplus_cpu_moe > 0 starts step 4 (fit.cpp:727); exactly 0 is a deficit."""
    free = (90 * MIB, 90 * MIB)
    settings = LlamaSettings(n_ctx=4096)
    dense = used(moe12, replace(settings, gpu_capacities=free,
                                override_tensor=f"{ALL_EXPERTS_PATTERN}=CPU"))
    margins = (free[0] - dense[0], free[1] - dense[1] - surplus)
    plan = fit_params(moe12, FitRequest(settings, free, margins))
    assert steps(plan)[2] == (3, "measure with every MoE expert tensor in host memory",
                              f"{'surplus' if surplus else 'deficit'} of 0.0 MiB with only "
                              "dense weights on the GPUs")
    assert (4 in {s.step for s in plan.steps}) == bool(surplus)


def test_moe_on_two_gpus_overflows_to_the_next_gpu(moe12):
    """Steps 3 and 4 of the plan are fit_layers' searches on predict_memory at the parameters
    set_ngl_tensor_split_tbo writes (-ngl, -ts, -ot), numbered 3 and 4; here the first GPU's
    extra layer sends part of its FFN to CUDA1."""
    free, margins = (90 * MIB, 90 * MIB), (8 * MIB, 8 * MIB)
    base = LlamaSettings(n_ctx=4096, gpu_capacities=free)
    plan = fit_params(moe12, FitRequest(LlamaSettings(n_ctx=4096), free, margins))

    def measure(shares, overflow):
        choice = layer_choice(shares, overflow, 12)
        return used(moe12, replace(
            base, n_gpu_layers=choice.n_gpu_layers,
            tensor_split=",".join(str(n) for n in choice.tensor_split),
            override_tensor=",".join(f"{pattern}={buffer}" for pattern, buffer in
                                     choice.overrides)))

    lines: list[tuple[int, str, str]] = []
    targets = [f - m for f, m in zip(free, margins)]
    shares, mem = fill_dense_layers(2, 12, True, targets, measure,
                                    lambda action, outcome: lines.append((3, action, outcome)))
    shares, overflow, mem = convert_to_full_layers(
        shares, mem, targets, ["CUDA0", "CUDA1"], measure,
        lambda action, outcome: lines.append((4, action, outcome)))
    choice = layer_choice(shares, overflow, 12)
    assert (plan.n_gpu_layers, plan.tensor_split, plan.overrides) == (
        choice.n_gpu_layers, choice.tensor_split, choice.overrides)
    assert "CUDA1" in {buffer for _, buffer in plan.overrides} and plan.fits
    assert steps(plan)[3:] == lines
    # step 1, the MoE measurement, step 3's empty start, then one per search line
    assert plan.measurements == 3 + len(lines)
    assert plan.command[plan.command.index("-ot") + 1] == ",".join(
        f"{pattern}={buffer}" for pattern, buffer in choice.overrides)


# ---- the draft model is measured with the main one (add_extra_memory) --------------------------


def test_the_draft_is_measured_with_its_own_gpu_layers(llama8b):
    """common_fit_extra_model measures the draft with its own parameters: -ngld 0 keeps its
    weights off the GPU, so the context can be longer than with the draft offloaded."""
    request = FitRequest(LlamaSettings(n_ctx=0), (24 * GIB,), (TARGET,))
    offloaded = fit_params(llama8b, replace(request, extras=ExtraFiles(draft=llama8b)))
    on_host = fit_params(llama8b, replace(request, extras=ExtraFiles(draft=llama8b,
                                                                     draft_gpu_layers=0)))
    assert 4096 < offloaded.n_ctx < on_host.n_ctx
    # the step-1 measurement is the main model plus the draft's buffers on that GPU
    settings = LlamaSettings(n_ctx=131072, gpu_capacities=(24 * GIB,))
    draft = extra_buffers(extra_loads(llama8b, settings, ExtraFiles(draft=llama8b,
                                                                    draft_gpu_layers=0)))
    expected = used(llama8b, settings, ("gpu0",))[0] + sum(
        item.n_bytes for item in draft if item.device == "gpu0")
    assert steps(on_host)[0][2].startswith(f"gpu0 {_mib(expected)} used")


def test_the_draft_weights_count_as_model_on_two_gpus(llama8b):
    """Step 2's model per layer sums mb.model, the draft's weights included (add_extra_memory
    adds them to model)."""
    free = (12 * GIB, 12 * GIB)
    draft = ExtraFiles(draft=llama8b)
    plan = fit_params(llama8b, FitRequest(LlamaSettings(n_ctx=0), free, (TARGET, TARGET),
                                          extras=draft))
    at_max = LlamaSettings(n_ctx=131072, gpu_capacities=free)

    def with_draft(settings: LlamaSettings, kinds=None) -> int:
        buffers = predict_memory(llama8b, settings).buffers + extra_buffers(
            extra_loads(llama8b, settings, draft))
        return sum(item.n_bytes for item in buffers if item.device in GPUS
                   and (kinds is None or item.kind in kinds))

    used_max, used_min = with_draft(at_max), with_draft(replace(at_max, n_ctx=4096))
    model = with_draft(at_max, ("model", "draft_model"))
    assert model > model_bytes(llama8b, at_max)  # the draft's weights are on the GPUs too
    target = sum(free) - 2 * TARGET - (3 * (model // 32)) // 2
    n_ctx = 4096 + (131072 - 4096) * (target - used_min) // (used_max - used_min)
    assert plan.n_ctx == max(n_ctx - n_ctx % 256, 4096)


def test_a_model_trained_at_context_0_is_refused_as_llama_cpp_refuses_it():
    """context_length 0 and -c unset: the fit resolves n_ctx to 0 x n_streams = 0 before
    measuring (fit.cpp:270), and the measurement's llama_init_from_model refuses a context of
    0 with no trained one (llama-context.cpp:3811)."""
    from gguf_inspect.core.errors import FormatError
    from tests.test_memory import synthetic

    model = synthetic("llama", 2, 256, 512, {"llama.context_length": 0})
    with pytest.raises(FormatError, match="^n_ctx is 0 and the model has no context_length"):
        fit_params(model, FitRequest(LlamaSettings(n_ctx=0), (GIB,), (TARGET,)))


# ---- what the fit is given ---------------------------------------------------------------------


def test_a_named_card_says_what_it_assumes():
    free, lines = assumed_free((GPU("rtx4090", KNOWN_GPUS_MIB["rtx4090"] * MIB),))
    assert lines == (f"fit: gpu0 (rtx4090) has {24564 - 512} MiB free: 24564.0 MiB total less "
                     "512 MiB the CUDA context takes before llama.cpp measures (headless card; "
                     "give --gpu a size for what nvidia-smi shows free)",)


def test_fit_target_takes_fewer_values_than_llama_max_devices():
    """common/arg.cpp --fit-target: split_arg.size() >= llama_max_devices() (16) throws."""
    assert parse_fit_target(",".join(["512"] * 15), 15) == (512 * MIB,) * 15
    with pytest.raises(ValueError) as caught:
        parse_fit_target(",".join(["512"] * 16), 16)
    assert str(caught.value) == "got 16 input configs, but system only has 16 devices"
    with pytest.raises(ValueError) as caught:
        parse_fit_target("1024,lots", 2)
    assert str(caught.value) == "expected MiB values like 1024 or 2048,512, got '1024,lots'"
    assert parse_fit_target(None, 0) == () and parse_fit_target("512", 0) == ()


def test_the_projector_is_added_where_it_loads():
    """server_context::load_model adds each of mtmd_get_memory_usage's devices to that
    device's target, if the target list reaches it; other extra files add nothing."""
    draft = ExtraLoad("draft", "d.gguf", (BufferEstimate("gpu0", "CUDA0", "draft_model", 3,
                                                         True),))
    mmproj = ExtraLoad("mmproj", "p.gguf", (BufferEstimate("gpu0", "CUDA0", "mmproj", 5, True),
                                            BufferEstimate("gpu1", "CUDA1", "mmproj", 7, True)))
    assert projector_margins((100,), (draft, mmproj)) == (105,)  # gpu1: beyond the list
    assert projector_margins((100, 100), (draft, mmproj)) == (105, 107)


def test_one_expert_is_still_a_moe_model():
    """hp_nex > 0 (fit.cpp:616): a file with a single expert takes the MoE path (its expert
    tensors measured in host memory first, dense-only layers in step 3)."""
    one = small_moe(n_expert=1)
    caps = (40 * MIB,)
    plan = fit_params(one, FitRequest(LlamaSettings(n_ctx=4096), caps, (MIB,)))
    assert used(one, LlamaSettings(n_ctx=4096, gpu_capacities=caps), ("gpu0",))[0] > 39 * MIB
    assert steps(plan)[2][1] == "measure with every MoE expert tensor in host memory"


def test_three_gpus_whose_first_takes_everything_end_in_llama_cpps_own_error(moe12):
    """400, 30 and 60 MiB free, 4 MiB margins: step 3 leaves gpu2 and gpu1 dense-only layers;
    in step 4 gpu0 takes every layer (all 12 blocks full, 208 MiB of its 396) and its extra
    layer takes gpu2's output layer, whose n_part wraps (test_fit_layers). gpu1's turn then
    moves 0 - 1 = 4294967295 layers onto itself (uint32_t): its high has 4294967295 full layers
    (n_gpu_layers, an int32_t, wraps back to 13); the search narrows that count, and its extra
    layer's index passes 1000: get_overflow_pattern throws (fit.cpp:496), the fit ends with
    COMMON_PARAMS_FIT_STATUS_ERROR, and llama.cpp loads the parameters as given."""
    free = (400 * MIB, 30 * MIB, 60 * MIB)
    plan = fit_params(moe12, FitRequest(LlamaSettings(n_ctx=4096), free, (4 * MIB,) * 3))
    assert (plan.status, plan.message) == ("error", "at most 1000 model layers are supported")
    assert (4, "gpu 0: 12 full layers") in [(s.step, s.action) for s in plan.steps]
    assert (4, "gpu 1: 4294967295 full layers") in [(s.step, s.action) for s in plan.steps]
    assert (plan.n_gpu_layers, plan.tensor_split, plan.overrides) == (13, (), ())
