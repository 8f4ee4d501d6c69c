"""Files that load beside a model, read from their header alone: a LoRA adapter's pairs
(``llama_adapter_lora_init_impl``, src/llama-adapter.cpp), a projector's vision hyperparameters
(``clip_model_loader::load_hparams``, tools/mtmd/clip.cpp), and what ``inspect`` says such a file
is.

Kept apart from ``adapters``, ``projector`` and ``extras`` (which size their buffers through the
memory model and the compute graph) so that the header-only ``inspect`` path imports neither.
"""

from __future__ import annotations

from dataclasses import dataclass

from gguf_inspect.core.model import GGUFFile, TensorInfo

@dataclass(frozen=True)
class LoraAdapter:
    path: str
    architecture: str | None
    scale: float
    alpha: float
    targets: tuple[str, ...]  # the model tensors patched, in file order
    pairs: tuple[tuple[TensorInfo, TensorInfo], ...]  # (lora_a, lora_b) per target


def is_adapter(gguf: GGUFFile) -> bool:
    return gguf.value("general.type") == "adapter"


def parse_lora_option(value: str) -> tuple[tuple[str, float], ...]:
    """``FILE[:SCALE][,FILE[:SCALE]...]`` into (path, scale) pairs (scale 1.0 as --lora;
    --lora-scaled in common/arg.cpp takes FILE:SCALE)."""
    adapters = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        path, _, scale = item.rpartition(":") if _has_scale(item) else (item, "", "")
        adapters.append((path, float(scale) if scale else 1.0))
    return tuple(adapters)


def _has_scale(item: str) -> bool:
    head, sep, tail = item.rpartition(":")
    if not sep or not head:
        return False
    try:
        float(tail)
    except ValueError:
        return False
    return True


def read_lora(gguf: GGUFFile, scale: float = 1.0) -> LoraAdapter:
    """The adapter's pairs; ValueError with llama.cpp's own reason when it would refuse it."""
    if gguf.value("general.type") != "adapter":
        raise ValueError("expect general.type to be 'adapter', but got: "
                         f"{gguf.value('general.type', '')}")
    if gguf.value("adapter.type") != "lora":
        raise ValueError("expect adapter.type to be 'lora', but got: "
                         f"{gguf.value('adapter.type', '')}")
    halves: dict[str, dict[str, TensorInfo]] = {}
    for tensor in gguf.tensors:
        for suffix in (".lora_a", ".lora_b"):
            if tensor.name.endswith(suffix):
                halves.setdefault(tensor.name[: -len(suffix)], {})[suffix] = tensor
    pairs = []
    for name, half in halves.items():
        if len(half) != 2:
            raise ValueError(f"LoRA tensor pair for '{name}' is missing one component")
        pairs.append((half[".lora_a"], half[".lora_b"]))
    alpha = float(gguf.value("adapter.lora.alpha", 0.0) or 0.0)
    return LoraAdapter(gguf.path, gguf.architecture, scale, alpha, tuple(halves), tuple(pairs))


@dataclass(frozen=True)
class ProjectorShape:
    """What the vision graph's tensor sizes depend on (clip.cpp load_hparams)."""

    projector_type: str
    image_size: int
    patch_size: int
    n_embd: int
    n_ff: int
    n_head: int
    n_layer: int
    has_class_embd: bool
    has_pre_ln: bool
    has_post_ln: bool
    has_patch_bias: bool
    has_biases: bool
    mm_widths: tuple[int, ...]  # output widths of mm.0 and mm.2 (the LLaVA MLP)
    feature_layers: tuple[int, ...]

    @property
    def n_patches(self) -> int:
        side = self.image_size // self.patch_size
        return side * side


def is_projector(gguf: GGUFFile) -> bool:
    """general.architecture "clip" (clip.cpp reads only ``clip.*`` keys; general.type "mmproj")."""
    return gguf.architecture == "clip" or gguf.value("general.type") == "mmproj"


def _int(gguf: GGUFFile, key: str) -> int:
    return int(gguf.value(key))


def _ints(gguf: GGUFFile, key: str) -> tuple[int, ...]:
    """An integer array key, () when absent (ArrayValue keeps small numeric arrays in ``items``)."""
    value = gguf.value(key)
    items = getattr(value, "items", value) or ()
    return tuple(int(item) for item in items)


def read_projector(gguf: GGUFFile) -> ProjectorShape:
    """The vision hyperparameters clip.cpp load_hparams reads; ValueError when one it requires is
    missing (clip.cpp throws "key not found")."""
    required = ("clip.vision.image_size", "clip.vision.patch_size", "clip.vision.embedding_length",
                "clip.vision.feed_forward_length", "clip.vision.attention.head_count",
                "clip.vision.block_count")
    missing = [key for key in required if key not in gguf.metadata]
    if missing:
        raise ValueError(f"not a vision projector mtmd loads: missing {', '.join(missing)}")
    names = {tensor.name for tensor in gguf.tensors}
    widths = tuple(gguf.tensor_index[f"mm.{index}.weight"].dim(1)
                   for index in (0, 2) if f"mm.{index}.weight" in names)
    projector_type = str(gguf.value("clip.projector_type")
                         or gguf.value("clip.vision.projector_type") or "unknown")
    return ProjectorShape(
        projector_type=projector_type,
        image_size=_int(gguf, "clip.vision.image_size"),
        patch_size=_int(gguf, "clip.vision.patch_size"),
        n_embd=_int(gguf, "clip.vision.embedding_length"),
        n_ff=_int(gguf, "clip.vision.feed_forward_length"),
        n_head=_int(gguf, "clip.vision.attention.head_count"),
        n_layer=_int(gguf, "clip.vision.block_count"),
        has_class_embd="v.class_embd" in names, has_pre_ln="v.pre_ln.weight" in names,
        has_post_ln="v.post_ln.weight" in names, has_patch_bias="v.patch_embd.bias" in names,
        has_biases="v.blk.0.attn_q.bias" in names, mm_widths=widths,
        feature_layers=_ints(gguf, "clip.vision.feature_layer"))


@dataclass(frozen=True)
class Companion:
    """A file that loads beside a model rather than as one (``inspect`` says so)."""

    kind: str  # general.type: "adapter" | "mmproj"
    facts: tuple[tuple[str, str], ...]


def describe_companion(gguf: GGUFFile) -> Companion | None:
    """A LoRA adapter (general.type "adapter": llama_adapter_lora_init loads it onto a model of
    its architecture) or a projector (general.architecture "clip": mtmd loads it); None for a
    model."""
    if is_adapter(gguf):
        facts = [("adapter type", str(gguf.value("adapter.type", "-"))),
                 ("targets", f"{gguf.architecture or '-'} models (loads with --lora)")]
        try:
            adapter = read_lora(gguf)
            facts += [("LoRA alpha", f"{adapter.alpha:g}"),
                      ("tensors patched", f"{len(adapter.targets)}: "
                       + ", ".join(adapter.targets[:6]) + (" ..." if len(adapter.targets) > 6
                                                            else ""))]
        except ValueError as error:
            facts.append(("llama.cpp refuses it", str(error)))
        return Companion("adapter", tuple(facts))
    if is_projector(gguf):
        facts = [("projector type", str(gguf.value("clip.projector_type")
                                        or gguf.value("clip.vision.projector_type") or "-")),
                 ("encoders", ", ".join(name for name in ("vision", "audio")
                                        if gguf.value(f"clip.has_{name}_encoder")) or "-"),
                 ("loads with", "--mmproj, beside a language model (mtmd)")]
        try:
            shape = read_projector(gguf)
            facts += [("image size / patch", f"{shape.image_size} / {shape.patch_size} "
                       f"({shape.n_patches} patches)"),
                      ("vision blocks / width", f"{shape.n_layer} / {shape.n_embd}"),
                      ("projects to", str(gguf.value("clip.vision.projection_dim", "-")))]
        except ValueError as error:
            facts.append(("mtmd refuses it", str(error)))
        return Companion("mmproj", tuple(facts))
    return None
