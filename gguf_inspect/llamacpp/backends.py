"""What kind of device holds the offloaded layers, and the rules that differ between kinds: the
CUDA backend (``--gpu`` alone) or llama.cpp's RPC backend (``--rpc host:port,...``, each server
serving one CPU device, as ``rpc-server`` does on a machine without a GPU).

The RPC rules, from ggml/src/ggml-rpc/ggml-rpc.cpp:

- buffer names: ``ggml_backend_rpc_buffer_type`` names a server's buffer type
  ``"RPC" + device + "[" + endpoint + "]"``, the device being the index on that server (0 for a
  one-device server), so two servers give ``RPC0[a:1]`` and ``RPC0[b:2]``; that is the name the
  load log prints and the name ``-ot`` takes (parse_tensor_buffer_overrides, common/arg.cpp);
- alignment: ``ggml_backend_rpc_buffer_type`` asks the server (``get_alignment``), which answers
  its own buffer type's, TENSOR_ALIGNMENT = 32 for the CPU;
- allocation size: ``ggml_backend_rpc_buffer_type_get_alloc_size`` asks the server for a
  quantized tensor whose rows are not a multiple of 512, and the CPU buffer type answers
  ggml_nbytes: no CUDA row padding;
- no host buffer type (``get_host_buffer_type = NULL`` in ggml_backend_rpc_device_i), so the
  CPU list of make_cpu_buft_list (src/llama-model.cpp) has no pinned buffer: host weights go to
  AMX / CPU_REPACK / CPU as on a CPU-only build, the output buffer (output_reserve) and the CPU
  backend's compute buffer (llama_context's backend_buft) are plain CPU;
- ``offload_op = NULL``: ggml_backend_dev_offload_op answers false, so op_offload never moves a
  host weight's matmul to an RPC device;
- caps async and events true (ggml_backend_rpc_device_get_props): pipeline parallelism is
  enabled under the same conditions as for CUDA (llama_context::llama_context).
"""

from __future__ import annotations

import re
from dataclasses import replace

from gguf_inspect.llamacpp.settings import LlamaSettings, rpc_servers

CPU_ALIGNMENT = 32  # TENSOR_ALIGNMENT, ggml-impl.h; CPU and CPU_REPACK buffer types
CUDA_ALIGNMENT = 128  # ggml_backend_cuda_buffer_type_get_alignment, ggml-cuda.cu
RPC_CPU_ALIGNMENT = CPU_ALIGNMENT  # rpc_server::get_alignment: the served CPU buffer type's
CUDA_HOST = "CUDA_Host"  # ggml_backend_cuda_host_buffer_type's name
_RPC_BUFFER = re.compile(r"^RPC\d+\[(?P<endpoint>[^\]]+)\]$")
_CUDA_BUFFER = re.compile(r"^CUDA(?P<index>\d+)$")


def uses_rpc(settings: LlamaSettings) -> bool:
    """The offloaded layers go to RPC servers (``--rpc``)."""
    return bool(rpc_servers(settings.rpc))


def device_buffer(settings: LlamaSettings, device: str) -> str:
    """The buffer type name of GPU ``device`` ("gpu1"): ``CUDA1``, or with ``--rpc`` the second
    server's ``RPC0[endpoint]`` (ggml_backend_rpc_buffer_type)."""
    index = int(device[3:])
    servers = rpc_servers(settings.rpc)
    return f"RPC0[{servers[index]}]" if servers else f"CUDA{index}"


def host_buffer(settings: LlamaSettings) -> str | None:
    """The pinned host buffer type of the first device (make_cpu_buft_list), None when there is
    none: CUDA's CUDA_Host; an RPC device has none; a CPU-only build has no device."""
    if not settings.gpu_capacities or uses_rpc(settings):
        return None
    return CUDA_HOST


def device_alignment(settings: LlamaSettings) -> int:
    """The device buffers' alignment: CUDA's 128, a CPU-backed RPC server's 32."""
    return RPC_CPU_ALIGNMENT if uses_rpc(settings) else CUDA_ALIGNMENT


def offloads_ops(settings: LlamaSettings) -> bool:
    """Whether the first device takes host weights' large-batch ops (its offload_op): CUDA's
    ggml_backend_cuda_device_offload_op does, RPC's is NULL."""
    return not uses_rpc(settings)


def is_cuda_device_buffer(buffer: str) -> bool:
    """A CUDA device buffer (CUDA0, CUDA1 ...): the one kind with CUDA's row padding and
    128-byte alignment; CUDA_Host, the pinned host buffer, follows the CPU's rules."""
    return _CUDA_BUFFER.match(buffer) is not None


def is_device_buffer(buffer: str) -> bool:
    """A buffer on a GPU or RPC device (CUDA0, RPC0[host:port]), not a host one."""
    return is_cuda_device_buffer(buffer) or _RPC_BUFFER.match(buffer) is not None


def buffer_device(buffer: str, settings: LlamaSettings) -> str | None:
    """The device a ``-ot`` buffer name sends a tensor to: "host" for CPU, "gpuN" for a device
    of this deployment; ValueError for a buffer type it lacks (common/arg.cpp refuses those)."""
    if buffer == "CPU":
        return "host"
    servers = rpc_servers(settings.rpc)
    n_devices = len(settings.gpu_capacities)
    rpc = _RPC_BUFFER.match(buffer)
    cuda = _CUDA_BUFFER.match(buffer)
    if rpc and rpc["endpoint"] in servers and buffer.startswith("RPC0["):
        return f"gpu{servers.index(rpc['endpoint'])}"
    if cuda and not servers and int(cuda["index"]) < n_devices:
        return f"gpu{cuda['index']}"
    if cuda:  # a CUDA build without that GPU
        raise ValueError(f"unknown buffer type {buffer} (--override-tensor): "
                         f"{n_devices} GPU(s) given")
    present = ", ".join(["CPU"] + [device_buffer(settings, f"gpu{index}")
                                   for index in range(n_devices)])
    raise ValueError(f"unknown buffer type {buffer} (--override-tensor): this deployment has "
                     f"{present}")


def with_rpc_devices(settings: LlamaSettings) -> LlamaSettings:
    """One device per ``--rpc`` server: with no ``--gpu`` sizes the servers count as equal (the
    layers split evenly, as llama.cpp splits them between servers reporting the same free
    memory); ValueError when sizes are given for another number of devices."""
    servers = rpc_servers(settings.rpc)
    if not servers:
        return settings
    if not settings.gpu_capacities:
        return replace(settings, gpu_capacities=(1,) * len(servers))
    if len(settings.gpu_capacities) != len(servers):
        raise ValueError(f"--rpc names {len(servers)} server(s) but {len(settings.gpu_capacities)}"
                         " GPU size(s) were given: give one --gpu size (its free memory) per "
                         "server")
    return settings
