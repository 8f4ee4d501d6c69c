"""The CPU backend's extra buffer types: which weights llama.cpp moves out of the plain CPU
buffer into a re-laid-out copy, and how big that copy is, on a CPU-only build.

``ggml_backend_cpu_get_extra_buffer_types`` (ggml-cpu/ggml-cpu.cpp) lists AMX first (compiled
with __AMX_INT8__ and __AVX512VNNI__, i.e. a native build on a CPU with both), then CPU_REPACK
(ggml-cpu/repack.cpp). A native build compiles in what this machine's CPU has, so the rules read
/proc/cpuinfo unless the settings say otherwise (``cpu_avx512``, ``cpu_amx``).
"""

from __future__ import annotations

from functools import lru_cache

from gguf_inspect.core.constants import GGML_TYPES
from gguf_inspect.core.model import TensorInfo

# ggml_repack_get_optimal_repack_type (x86): type -> whether it needs AVX512 to repack.
X86_REPACK_TYPES = {"q4_0": False, "q4_K": False, "iq4_nl": False, "mxfp4": False, "q2_K": True}

# ggml::cpu::amx::extra_buffer_type::supports_op (ggml-cpu/amx/amx.cpp): the row length a
# MUL_MAT weight's type needs in the AMX buffer (TILE_K = 32, QK_K = 256; f16 is kept unpacked).
AMX_ROW_MULTIPLE = {"q4_0": 32, "q4_1": 32, "q8_0": 32, "q4_K": 256, "q5_K": 256, "q6_K": 256,
                    "iq4_xs": 256, "f16": 16}
AMX_OUTPUT_MULTIPLE = 2 * 16  # op->ne[0] % (TILE_N * 2): the weight's ne[1]
# get_row_size<TB, BLOCK_K> (ggml-cpu/amx/mmq.cpp): bytes the packed layout adds per block.
AMX_EXTRA_PER_BLOCK = {"q8_0": 4, "q4_K": 4, "q5_K": 4, "iq4_xs": 2}


@lru_cache(maxsize=1)
def host_cpu_flags() -> frozenset[str]:
    """This machine's CPU flags (/proc/cpuinfo), which a native ggml build compiles in."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def host_has_avx512() -> bool:
    """Whether this machine's CPU has AVX512F."""
    return "avx512f" in host_cpu_flags()


def host_has_amx() -> bool:
    """Whether a native build here has the AMX buffer type (AMX-INT8 and AVX512-VNNI)."""
    return {"amx_int8", "avx512_vnni"} <= host_cpu_flags()


def _n_dims(tensor: TensorInfo) -> int:
    """ggml_n_dims: trailing dimensions of size 1 do not count."""
    dims = len(tensor.ne)
    while dims > 1 and tensor.ne[dims - 1] == 1:
        dims -= 1
    return max(dims, 1)  # a 0-dim tensor counts as 1-D, as in ggml


def repacks(tensor: TensorInfo, matmul_dims: int | None, avx512: bool) -> bool:
    """ggml_repack_get_optimal_repack_type (ggml-cpu/repack.cpp, x86) plus the extra buffer's
    supports_op: MUL_MAT on a 2-D weight or MUL_MAT_ID on a 3-D one, a repackable type, and
    ne[1] % 8 == 0."""
    if matmul_dims is None or _n_dims(tensor) != matmul_dims or len(tensor.ne) < 2:
        return False
    needs_avx512 = X86_REPACK_TYPES.get(tensor.type_name)
    if needs_avx512 is None or (needs_avx512 and not avx512):
        return False
    return tensor.dim(1) % 8 == 0


def amx_supports(tensor: TensorInfo, matmul_dims: int | None) -> bool:
    """The AMX buffer takes a MUL_MAT weight (not MUL_MAT_ID) of an AMX type whose ne[0] is a
    multiple of the type's tile and whose ne[1] is a multiple of 32."""
    multiple = AMX_ROW_MULTIPLE.get(tensor.type_name)
    if matmul_dims != 2 or multiple is None or len(tensor.ne) < 2:
        return False
    return tensor.dim(0) % multiple == 0 and tensor.dim(1) % AMX_OUTPUT_MULTIPLE == 0


def amx_alloc_size(tensor: TensorInfo) -> int:
    """ggml_backend_amx_get_alloc_size (ggml-cpu/amx/mmq.cpp): for a type with AMX kernels,
    ne[1] packed rows of get_row_size(ne[0]) bytes; f16 (no packing) its ggml_nbytes."""
    if tensor.type_name == "f16":
        return tensor.n_bytes
    ggml_type = GGML_TYPES[tensor.type_id]
    blocks = tensor.dim(0) // ggml_type.block_size
    extra = AMX_EXTRA_PER_BLOCK.get(tensor.type_name, 0)
    return tensor.dim(1) * blocks * (ggml_type.type_size + extra)
