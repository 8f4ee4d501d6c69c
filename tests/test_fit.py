"""llama.cpp's automatic fit (common_params_fit_impl, common/fit.cpp) replayed on the memory model.

Each expectation restates fit.cpp's rule by hand on top of ``predict_memory`` (the memory
measurement that llama.cpp's no-alloc load makes, tested elsewhere): the interpolation of
step 2, the back-to-front layer filling of step 3, the MoE expert overrides, the margins and
what the user set. No GPU is needed; nothing here was run against llama.cpp's own fit (it lives
in common/, which llama-cpp-python does not expose).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from gguf_inspect.llamacpp.devices import GPU, KNOWN_GPUS_MIB
from gguf_inspect.llamacpp.extras import ExtraLoad
from gguf_inspect.llamacpp.fit import (
    FitPlan,
    extra_args,
    fit_command,
    UINT32_MAX,
    FitRequest,
    assumed_free,
    fit_params,
    parse_fit_target,
    projector_margins,
)
from gguf_inspect.llamacpp.fit_layers import (
    UP,
    FitError,
    LayerShare,
    _step_size,
    as_uint32,
    c_div,
    layer_choice,
    mib,
)
from gguf_inspect.llamacpp.memory import predict_memory
from gguf_inspect.llamacpp.placement import BufferEstimate
from gguf_inspect.llamacpp.settings import LlamaSettings
from tests.conftest import FIXTURES
from tests.gpu_shapes import llama31_8b, small_moe

MIB, GIB = 1 << 20, 1 << 30
TARGET = 1024 * MIB  # common_params::fit_params_target's default


@pytest.fixture(scope="module")
def llama8b():
    return llama31_8b()


def gpu_used(gguf, settings: LlamaSettings, device: str = "gpu0") -> int:
    """What the no-alloc load reports for a device: model + context + compute."""
    return predict_memory(gguf, settings).device_total(device)


def one_gpu(free: int, **given) -> FitRequest:
    settings = LlamaSettings(**{"n_ctx": 0, **given})
    return FitRequest(settings, (free,), (TARGET,), gpu_layers_set="n_gpu_layers" in given)


# ---- the three cases on the Llama-3.1-8B shape ------------------------------------------


def test_24gib_needs_no_change(llama8b):
    plan = fit_params(llama8b, one_gpu(24 * GIB))
    at_max = gpu_used(llama8b, LlamaSettings(n_ctx=131072, gpu_capacities=(24 * GIB,)))
    assert 24 * GIB - at_max >= TARGET  # step 1: already leaves the margin
    assert (plan.status, plan.n_ctx, plan.n_gpu_layers) == ("success", 131072, 33)
    assert [step.step for step in plan.steps] == [1]
    assert plan.command[:7] == ("llama-server", "-m", llama8b.path, "-c", "131072", "-ngl",
                                "33")


def test_16gib_lowers_the_context_by_linear_interpolation(llama8b):
    free = 16 * GIB
    plan = fit_params(llama8b, one_gpu(free))
    caps = (free,)
    used_max = gpu_used(llama8b, LlamaSettings(n_ctx=131072, gpu_capacities=caps))
    used_min = gpu_used(llama8b, LlamaSettings(n_ctx=4096, gpu_capacities=caps))
    target = free - TARGET
    n_ctx = 4096 + (131072 - 4096) * (target - used_min) // (used_max - used_min)
    n_ctx -= n_ctx % 256  # aligned down to 256 x n_streams
    assert 4096 < n_ctx < 131072
    assert (plan.n_ctx, plan.n_gpu_layers, plan.status) == (n_ctx, 33, "success")
    assert [step.step for step in plan.steps] == [1, 2]  # one GPU: the context alone decides
    assert "-c" in plan.command and plan.command[plan.command.index("-c") + 1] == str(n_ctx)


def test_4gib_keeps_the_minimum_context_and_lowers_the_layers(llama8b):
    free = 4 * GIB
    plan = fit_params(llama8b, one_gpu(free))

    def leaves_margin(ngl: int) -> bool:
        settings = LlamaSettings(n_ctx=4096, n_gpu_layers=ngl, gpu_capacities=(free,))
        return free - gpu_used(llama8b, settings) >= TARGET

    most = max(ngl for ngl in range(34) if leaves_margin(ngl))
    assert not leaves_margin(33)  # the minimum context alone is not enough
    assert (plan.n_ctx, plan.n_gpu_layers) == (4096, most)
    assert 0 < most < 33 and not leaves_margin(most + 1)
    assert plan.fits and plan.devices[0].projected_free >= TARGET
    assert "3" in {str(step.step) for step in plan.steps}


def test_the_context_follows_the_streams_alignment(llama8b):
    """n_ctx_max is the trained context times the streams, and the result is a multiple of
    256 x n_streams (non-unified KV with two sequences)."""
    free = 16 * GIB
    plan = fit_params(llama8b, one_gpu(free, n_parallel=2))
    caps = (free,)
    used_max = gpu_used(llama8b, LlamaSettings(n_ctx=262144, n_parallel=2, gpu_capacities=caps))
    used_min = gpu_used(llama8b, LlamaSettings(n_ctx=8192, n_parallel=2, gpu_capacities=caps))
    n_ctx = 8192 + (262144 - 8192) * (free - TARGET - used_min) // (used_max - used_min)
    assert plan.n_ctx == n_ctx - n_ctx % 512 and plan.n_ctx % 512 == 0


# ---- what the user set ----------------------------------------------------------------------


def test_a_given_context_is_not_changed(llama8b):
    plan = fit_params(llama8b, one_gpu(4 * GIB, n_ctx=8192))
    assert plan.n_ctx == 8192 and plan.n_gpu_layers < 33
    assert any("set by the user to 8192" in step.outcome for step in plan.steps)


def test_minus_c_0_asks_for_the_full_context(llama8b):
    request = replace(one_gpu(16 * GIB), n_ctx_min=UINT32_MAX)
    plan = fit_params(llama8b, request)
    assert plan.n_ctx == 131072 and plan.n_gpu_layers < 33  # layers go instead


def test_given_layers_stop_the_fit_after_the_context(llama8b):
    plan = fit_params(llama8b, one_gpu(4 * GIB, n_gpu_layers=30))
    assert plan.status == "failure"
    assert plan.message == "n_gpu_layers already set by user to 30, abort"
    assert (plan.n_ctx, plan.n_gpu_layers) == (4096, 30)  # step 2 had already run


def test_given_layers_that_fit_by_the_context_alone(llama8b):
    """One GPU: when the shorter context is enough, the fit returns before looking at -ngl."""
    plan = fit_params(llama8b, one_gpu(4 * GIB, n_gpu_layers=10))
    assert plan.status == "success" and plan.n_gpu_layers == 10 and 4096 < plan.n_ctx


def test_given_overrides_stop_the_fit(llama8b):
    plan = fit_params(llama8b, one_gpu(4 * GIB, override_tensor=r"blk\.0\.ffn_up=CPU"))
    assert plan.status == "failure" and "tensor_buft_overrides already set" in plan.message
    assert ("-ot", r"blk\.0\.ffn_up=CPU") == plan.command[plan.command.index("-ot"):][:2]


def test_a_given_split_stops_the_fit_on_two_gpus(llama8b):
    settings = LlamaSettings(n_ctx=4096, tensor_split="1,1")
    plan = fit_params(llama8b, FitRequest(settings, (3 * GIB, 3 * GIB), (TARGET, TARGET)))
    assert plan.status == "failure" and "tensor_split already set" in plan.message


# ---- several GPUs ---------------------------------------------------------------------------


def test_unequal_gpus_are_filled_back_to_front(llama8b):
    free = (6 * GIB, 3 * GIB)
    plan = fit_params(llama8b, FitRequest(LlamaSettings(n_ctx=4096), free, (TARGET, TARGET)))
    first, last = plan.tensor_split
    assert first + last == plan.n_gpu_layers and plan.status == "success"

    def last_gpu_fits(n: int) -> bool:  # step 3 measures the last GPU alone first
        settings = LlamaSettings(n_ctx=4096, n_gpu_layers=n, tensor_split=f"0,{n}",
                                 gpu_capacities=free)
        return gpu_used(llama8b, settings, "gpu1") <= free[1] - TARGET

    assert last_gpu_fits(last) and not last_gpu_fits(last + 1)
    assert plan.n_gpu_layers == 33  # the rest fits the larger card
    # each search checks only the device it fills (mem_high[id] <= targets[id]): the first
    # GPU is within its target; the last one was measured with nothing on the first
    assert plan.devices[0].used_bytes <= plan.devices[0].free_bytes - TARGET
    assert ("-ts", f"{first},{last}") == plan.command[plan.command.index("-ts"):][:2]


def test_two_gpus_keep_a_safety_term_in_the_context(llama8b):
    """Step 2 on several GPUs subtracts (nd + 1) x model per layer / 2 (dense) from the
    target: whole layers waste about half a layer per device."""
    free = (6 * GIB, 3 * GIB)
    plan = fit_params(llama8b, FitRequest(LlamaSettings(n_ctx=0), free, (TARGET, TARGET)))
    full = LlamaSettings(n_ctx=131072, gpu_capacities=free)
    least = LlamaSettings(n_ctx=4096, gpu_capacities=free)
    prediction = predict_memory(llama8b, full)
    model = sum(prediction.device_total(d, "model") for d in ("gpu0", "gpu1"))
    used_max = sum(prediction.device_total(d) for d in ("gpu0", "gpu1"))
    used_min = sum(gpu_used(llama8b, least, d) for d in ("gpu0", "gpu1"))
    target = sum(free) - 2 * TARGET - (3 * (model // 32)) // 2
    n_ctx = 4096 + (131072 - 4096) * (target - used_min) // (used_max - used_min)
    assert plan.n_ctx == max(n_ctx - n_ctx % 256, 4096)


# ---- MoE ------------------------------------------------------------------------------------

EXPERT_PATTERN = re.compile(r"blk\\\.(\d+)\\\.ffn_")


def test_moe_experts_go_to_the_host_first():
    moe = small_moe()
    caps = (60 * MIB,)
    full = gpu_used(moe, LlamaSettings(n_ctx=4096, gpu_capacities=caps))
    dense = gpu_used(moe, LlamaSettings(n_ctx=4096, gpu_capacities=caps,
                                        override_tensor=r"blk\.\d+\.ffn_(up|down|gate_up|gate)"
                                                        r"_(ch|)exps=CPU"))
    margin = 10 * MIB
    assert dense <= caps[0] - margin < full  # the dense weights fit, the experts do not
    plan = fit_params(moe, FitRequest(LlamaSettings(n_ctx=4096), caps, (margin,)))
    assert plan.status == "success" and plan.fits
    assert "expert tensor in host memory" in plan.steps[2].action  # before any layer search
    assert {step.step for step in plan.steps} >= {3, 4}
    assert plan.overrides and all(buffer == "CPU" for _, buffer in plan.overrides)
    assert any(pattern.endswith("_(ch|)exps") for pattern, _ in plan.overrides)
    assert all(EXPERT_PATTERN.match(pattern) for pattern, _ in plan.overrides)
    assert "-ot" in plan.command


def test_moe_on_the_zoo_fixture():
    """One byte short at full offload: every layer stays on the GPU and part of the expert
    FFN goes to the host through -ot overrides (step 4's partial layer)."""
    from gguf_inspect.gguf.open import read_gguf

    moe = read_gguf("fixtures/zoo/qwen3moe.gguf")
    caps = (64 * MIB,)
    whole = gpu_used(moe, LlamaSettings(n_ctx=4096, gpu_capacities=caps))
    for short_by in (1, 20_000):
        plan = fit_params(moe, FitRequest(LlamaSettings(n_ctx=4096), caps,
                                          (caps[0] - whole + short_by,)))
        assert plan.status == "success" and plan.fits, short_by
        assert plan.n_gpu_layers == moe.value("qwen3moe.block_count") + 1
        assert plan.devices[0].used_bytes < whole and plan.overrides
        assert all(EXPERT_PATTERN.match(pattern) for pattern, _ in plan.overrides)
    # further short, a whole layer leaves the GPU and the plan still keeps the margin
    plan = fit_params(moe, FitRequest(LlamaSettings(n_ctx=4096), caps,
                                      (caps[0] - whole + 60_000,)))
    assert plan.status == "success" and plan.fits


# ---- the pieces of the replay ---------------------------------------------------------------


def test_c_arithmetic():
    assert c_div(-7, 2) == -3 and c_div(7, 2) == 3  # truncation towards zero
    # every sign, a zero numerator either way, a divisor of 1 (C99 6.5.5: a / b truncates)
    assert [c_div(n, d) for n, d in ((7, -2), (-7, -2), (0, 3), (0, -3), (-1, 2), (1, -2),
                                     (5, 1), (-5, 1))] == [-3, 3, 0, 0, 0, 0, 5, -5]
    with pytest.raises(FitError) as caught:  # undefined in C: an error of the fit here
        c_div(1, 0)
    assert str(caught.value) == ("division by zero where llama.cpp's fit divides by zero too "
                                 "(undefined behaviour in C++: the process usually dies)")
    assert as_uint32(-1) == 0xFFFFFFFF  # int64 -> uint32 wraps around


def test_the_step_size_interpolates_and_stays_inside_the_range():
    """fit.cpp's step_size = int64_t(delta) * (target - mem) / (mem_high - mem), clamped to
    [1, delta - 1]: 10 layers between 100 and 200 MiB used, target 150: 5 layers."""
    assert _step_size(10, 150, 100, 200) == 5
    assert _step_size(10, 190, 100, 200) == 9 and _step_size(10, 199, 100, 200) == 9  # clamp
    assert _step_size(10, 101, 100, 200) == 1 and _step_size(10, 100, 100, 200) == 1
    assert _step_size(10, 200, 100, 200) == 9  # the whole range still leaves one layer
    assert _step_size(10, 150, 50, 250) == 5  # (150 - 50) * 10 / 200


def test_sizes_read_as_llama_cpp_logs_them():
    assert (mib(3 << 20), mib(1536 << 10), mib(0)) == ("3.0 MiB", "1.5 MiB", "0.0 MiB")


def test_overrides_of_partial_layers():
    """set_ngl_tensor_split_tbo for one device, 4 blocks + output, 5 layers, 3 partial, the
    first partial one keeping attention + up: blocks 2, 3 and the output index 4."""
    choice = layer_choice([LayerShare(5, 3, UP)], ["CPU"], hp_ngl=4)
    assert choice.n_gpu_layers == 5 and choice.tensor_split == ()
    assert choice.overrides == (
        (r"blk\.2\.ffn_(gate|gate_up|down).*", "CPU"),
        (r"blk\.3\.ffn_(up|down|gate_up|gate)_(ch|)exps", "CPU"),
        (r"blk\.4\.ffn_(up|down|gate_up|gate)_(ch|)exps", "CPU"))


def test_fit_target_parsing():
    assert parse_fit_target(None, 2) == (TARGET, TARGET)
    assert parse_fit_target("2048", 3) == (2048 * MIB,) * 3  # broadcast
    assert parse_fit_target("2048/512", 3) == (2048 * MIB, 512 * MIB, TARGET)
    with pytest.raises(ValueError):
        parse_fit_target("lots", 1)


def test_named_cards_lose_the_cuda_context():
    free, lines = assumed_free((GPU("rtx4090", KNOWN_GPUS_MIB["rtx4090"] * MIB),
                                GPU("20GiB", 20 * GIB)))
    assert free == ((24564 - 512) * MIB, 20 * GIB) and len(lines) == 1


def test_the_projector_raises_its_gpus_target():
    loads = (ExtraLoad("mmproj", "p.gguf", (BufferEstimate("gpu0", "CUDA0", "mmproj", 5, True),
                                            BufferEstimate("host", "CPU", "mmproj", 7, True))),)
    assert projector_margins((100, 100), loads) == (105, 100)


# ---- the command ----------------------------------------------------------------------------


def test_cli_fit_json(tmp_path, llama8b, monkeypatch):
    from typer.testing import CliRunner

    import gguf_inspect.commands.vram as command
    from gguf_inspect.cli import app

    monkeypatch.setattr(command, "read_gguf", lambda location: llama8b)
    result = CliRunner().invoke(app, ["vram", "model.gguf", "--gpu", "16GiB", "-fit", "on",
                                      "-fitt", "2048", "-fitc", "8192", "--json"])
    assert result.exit_code == 0, result.output
    fit = json.loads(result.output)["fit"]
    assert fit["status"] == "success" and fit["devices"][0]["target_bytes"] == 2048 * MIB
    assert fit["n_ctx"] % 256 == 0 and 8192 <= fit["n_ctx"] < 131072
    assert fit["command"][:2] == ["llama-server", "-m"] and fit["steps"][0]["step"] == 1
    assert fit["command_line"].endswith("-fit off")
    plain = CliRunner().invoke(app, ["vram", "model.gguf", "--gpu", "16GiB", "--json"])
    assert "fit" not in json.loads(plain.output)  # off by default
    bad = CliRunner().invoke(app, ["vram", "model.gguf", "--gpu", "16GiB", "--fit", "maybe"])
    assert bad.exit_code == 2


def test_cli_exit_code_follows_the_fitted_start(llama8b, monkeypatch):
    """A 4 GiB card cannot hold the 8B shape at the given settings (exit 1 without --fit), but
    llama-server fits itself to it (18 layers, 1 GiB kept free): with --fit on the gate passes.
    A card too small to keep the target free even at zero layers still fails."""
    from typer.testing import CliRunner

    import gguf_inspect.commands.vram as command
    from gguf_inspect.cli import app

    monkeypatch.setattr(command, "read_gguf", lambda location: llama8b)
    given = CliRunner().invoke(app, ["vram", "model.gguf", "--gpu", "4GiB", "--json"])
    assert given.exit_code == 1 and json.loads(given.output)["fits"] is False
    fitted = CliRunner().invoke(app, ["vram", "model.gguf", "--gpu", "4GiB", "--fit", "on",
                                      "--json"])
    fit = json.loads(fitted.output)["fit"]
    assert (fitted.exit_code, fit["fits"], fit["n_gpu_layers"]) == (0, True, 18)
    tiny = CliRunner().invoke(app, ["vram", "model.gguf", "--gpu", "1GiB", "--fit", "on",
                                    "--json"])
    assert tiny.exit_code == 1 and json.loads(tiny.output)["fit"]["fits"] is False


def test_a_draft_model_is_fitted_alongside(llama8b):
    """common_fit_extra_model: the draft follows the main context and competes for the same
    memory, so the interpolated context is shorter than without it."""
    from gguf_inspect.llamacpp.extras import ExtraFiles

    alone = fit_params(llama8b, one_gpu(24 * GIB))
    with_draft = fit_params(llama8b, replace(one_gpu(24 * GIB),
                                             extras=ExtraFiles(draft=llama8b)))
    assert alone.n_ctx == 131072 and 4096 < with_draft.n_ctx < 131072
    assert with_draft.n_ctx % 256 == 0 and with_draft.fits
    assert "-md" in with_draft.command


# ---- the command that pins the fit (fit_command) ------------------------------------------------

ZOO_MOE = str(FIXTURES / "zoo" / "qwen3moe.gguf")


def _plan(settings: LlamaSettings, **fields) -> FitPlan:
    values = {"status": "success", "message": None, "settings": settings, "n_ctx": 2048,
              "n_gpu_layers": 2, "tensor_split": (), "overrides": (), "devices": (),
              "steps": (), "measurements": 0, **fields}
    return FitPlan(**values)


def _loaded_by_this_tool(command: tuple[str, ...]) -> dict:
    """The command given back to this tool's vram, whose flags are llama.cpp's spellings
    (common/arg.cpp): the configuration it resolves."""
    from typer.testing import CliRunner

    from gguf_inspect.cli import app

    assert command[:3] == ("llama-server", "-m", ZOO_MOE) and command[-2:] == ("-fit", "off")
    result = CliRunner().invoke(app, ["vram", ZOO_MOE, *command[3:], "--gpu", "8GiB",
                                      "--gpu", "8GiB", "--json"])
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.output)["config"]


def test_the_command_sets_every_parameter_the_fit_measured() -> None:
    """Each setting away from llama-server's default is in the command, spelled as llama.cpp's
    CLI spells it, so that loading the command sets exactly what the fit measured."""
    # (the zoo's 16-wide heads take no quantized cache: bf16 and f32 are off-default too)
    settings = LlamaSettings(n_batch=1024, n_ubatch=256, cache_type_k="bf16",
                             cache_type_v="f32", flash_attn="on", swa_full=True,
                             kv_unified=True, use_mmap=False, n_cpu_moe=1, main_gpu=1,
                             offload_kqv=False, op_offload=False, cpu_repack=False,
                             embeddings=True, n_parallel=2)
    plan = _plan(settings, n_ctx=3072, n_gpu_layers=2, tensor_split=(3, 1),
                 overrides=((r"blk\.0\.ffn_up_exps", "CPU"), (r"blk\.1\.ffn_down_exps", "CPU")))
    command = fit_command(ZOO_MOE, plan)
    config = _loaded_by_this_tool(command)
    assert (config["n_ctx"], config["n_gpu_layers"], config["n_parallel"]) == (3072, 2, 2)
    assert config["tensor_split"] == "3,1"
    assert config["override_tensor"] == r"blk\.0\.ffn_up_exps=CPU,blk\.1\.ffn_down_exps=CPU"
    for name in ("n_batch", "n_ubatch", "cache_type_k", "cache_type_v", "flash_attn",
                 "swa_full", "kv_unified", "use_mmap", "n_cpu_moe", "main_gpu", "offload_kqv",
                 "op_offload", "cpu_repack", "embeddings"):
        assert config[name] == getattr(settings, name), name
    assert "--swa-full" in command  # llama-server's own default is off (common/common.h:574)


def test_the_command_leaves_llama_servers_defaults_out() -> None:
    """At llama-server's defaults only the pinned parameters appear; a plan without a full
    SWA cache needs no flag, llama-server's default being off; the split and the overrides the
    user gave are kept when the fit set none."""
    plain = fit_command("m.gguf", _plan(LlamaSettings(swa_full=False)))
    assert plain == ("llama-server", "-m", "m.gguf", "-c", "2048", "-ngl", "2", "-np", "1",
                     "-fit", "off")
    given = fit_command("m.gguf", _plan(LlamaSettings(swa_full=False, tensor_split="1,2",
                                                      override_tensor="exps=CPU")),
                        extra_args=("--mmproj", "p.gguf"))
    assert given == ("llama-server", "-m", "m.gguf", "-c", "2048", "-ngl", "2", "-np", "1",
                     "-ts", "1,2", "-ot", "exps=CPU", "--mmproj", "p.gguf", "-fit", "off")


def test_the_extra_files_are_spelled_as_llama_server_takes_them() -> None:
    """common/arg.cpp: --lora FNAME, --lora-scaled FNAME:SCALE, -md FNAME, -ngld N, --mmproj
    FNAME, --no-mmproj-offload; none without extra files."""
    from gguf_inspect.gguf.open import read_gguf
    from gguf_inspect.llamacpp.extras import ExtraFiles
    from tests.test_extras import LORA, MMPROJ, MODEL

    lora, mmproj, draft = read_gguf(LORA), read_gguf(MMPROJ), read_gguf(MODEL)
    assert extra_args(None) == () and extra_args(ExtraFiles()) == ()
    assert extra_args(ExtraFiles(loras=((lora, 1.0), (lora, 0.5)), draft=draft,
                                 draft_gpu_layers=3, mmproj=mmproj, mmproj_offload=False)) == (
        "--lora", LORA, "--lora-scaled", f"{LORA}:0.5", "-md", MODEL, "-ngld", "3",
        "--mmproj", MMPROJ, "--no-mmproj-offload")
    assert extra_args(ExtraFiles(draft=draft, mmproj=mmproj)) == ("-md", MODEL, "--mmproj",
                                                                  MMPROJ)


# ---- what each step reports (its measurement, against the target) ------------------------------

def _mib(n_bytes: int) -> str:
    return f"{n_bytes / MIB:.1f} MiB"


def test_each_step_reports_its_measurement(llama8b):
    """The steps as printed for the issue's three cards: each measurement is predict_memory at
    that step's parameters (gpu_used, computed here), against the card's free memory less the
    1024 MiB target; the step-2 interpolation and the step-3 search as fit.cpp makes them."""
    caps = lambda free: (free,)  # noqa: E731
    full, low = 131072, 4096

    def used(free: int, n_ctx: int, ngl: int = -1) -> int:
        return gpu_used(llama8b, LlamaSettings(n_ctx=n_ctx, n_gpu_layers=ngl,
                                               gpu_capacities=caps(free)))

    measure = (1, f"measure at n_ctx {full}, --ngl all")
    plenty = fit_params(llama8b, one_gpu(24 * GIB)).steps
    assert [(s.step, s.action, s.outcome) for s in plenty] == [(*measure, (
        f"gpu0 {_mib(used(24 * GIB, full))} used of {_mib(24 * GIB)} free, target "
        f"{_mib(TARGET)} free: no changes needed"))]
    free = 16 * GIB
    steps = fit_params(llama8b, one_gpu(free)).steps
    used_max, used_min, target = used(free, full), used(free, low), free - TARGET
    n_ctx = low + (full - low) * (target - used_min) // (used_max - used_min)
    n_ctx -= n_ctx % 256
    assert [(s.step, s.action, s.outcome) for s in steps] == [
        (*measure, f"gpu0 {_mib(used_max)} used of {_mib(free)} free, target {_mib(TARGET)} "
                   "free: changes needed (short of the target: gpu0)"),
        (2, f"measure at the minimum context {low}; interpolate",
         f"{_mib(used_min)} at {low}, {_mib(used_max)} at {full}, target {_mib(target)}: "
         f"n_ctx {n_ctx} (aligned down to 256): fits by the context alone")]
    free = 4 * GIB
    steps = fit_params(llama8b, one_gpu(free)).steps
    target = free - TARGET
    layers = [k for k in range(34) if used(free, low, k) <= target][-1]  # the most that fit
    assert [(s.step, s.action) for s in steps] == [
        measure, (2, f"measure at the minimum context {low}"),
        (3, "gpu 0: all 33 remaining layers"), (3, f"gpu 0: {layers} layers"),
        (3, f"gpu 0: {layers + 1} layers")]
    assert [s.outcome for s in steps[1:]] == [
        f"{_mib(used(free, low))} used, target {_mib(target)}: context {low}, layers must "
        "move too",
        f"{_mib(used(free, low))} used vs. target {_mib(target)}: too many: search below",
        f"{_mib(used(free, low, layers))} used vs. target {_mib(target)}: fits: new lower "
        "bound",
        f"{_mib(used(free, low, layers + 1))} used vs. target {_mib(target)}: too many: new "
        "upper bound"]


def test_the_overflow_patterns_are_fit_cpps():
    """get_overflow_pattern (common/fit.cpp:493-528), transcribed: the tensors of a layer that
    leave its device by what stays (attention, +up, +gate; a MoE layer's experts), for at most
    1000 layers."""
    from gguf_inspect.llamacpp.fit_layers import ATTN, GATE, MOE, overflow_pattern

    assert [overflow_pattern(7, kind) for kind in (ATTN, UP, GATE, MOE)] == [
        r"blk\.7\.ffn_(gate|up|gate_up|down).*", r"blk\.7\.ffn_(gate|gate_up|down).*",
        r"blk\.7\.ffn_down.*", r"blk\.7\.ffn_(up|down|gate_up|gate)_(ch|)exps"]
    assert overflow_pattern(999, GATE) == r"blk\.999\.ffn_down.*"
    with pytest.raises(FitError) as caught:
        overflow_pattern(1000, GATE)
    assert str(caught.value) == "at most 1000 model layers are supported"
