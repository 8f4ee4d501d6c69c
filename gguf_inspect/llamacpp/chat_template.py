"""Which chat template llama.cpp would take a ``tokenizer.chat_template`` for, and which real
template it is: llama.cpp's builtin template names and its substring detection rules, restated
from ``LLM_CHAT_TEMPLATES`` / ``llm_chat_detect_template`` in src/llama-chat.cpp (llama.cpp
vendored by llama-cpp-python 0.3.36), and a table of normalised hashes of real templates.

Pure string work: nothing here parses, renders or executes a template.
"""

from __future__ import annotations

import hashlib
import re

from gguf_inspect.llamacpp.known_templates import KNOWN_TEMPLATE_HASHES

# The keys of LLM_CHAT_TEMPLATES (src/llama-chat.cpp), in its order: the names
# llama_chat_builtin_templates returns and --chat-template accepts.
BUILTIN_TEMPLATES = (
    "chatml", "llama2", "llama2-sys", "llama2-sys-bos", "llama2-sys-strip", "mistral-v1",
    "mistral-v3", "mistral-v3-tekken", "mistral-v7", "mistral-v7-tekken", "phi3", "phi4",
    "falcon3", "zephyr", "monarch", "gemma", "orion", "openchat", "vicuna", "vicuna-orca",
    "deepseek", "deepseek2", "deepseek3", "deepseek-ocr", "command-r", "llama3", "chatglm3",
    "chatglm4", "glmedge", "minicpm", "exaone3", "exaone4", "exaone-moe", "rwkv-world",
    "granite", "granite-4.0", "granite-4.1", "gigachat", "megrez", "yandex", "bailing",
    "bailing-think", "bailing2", "llama4", "smolvlm", "hunyuan-moe", "gpt-oss", "hunyuan-dense",
    "hunyuan-vl", "kimi-k2", "seed_oss", "grok-2", "pangu-embedded", "solar-open",
)

# llm_chat_detect_template's flat rules after its first branches, in its order: every marker
# must be in the template. (The branches with nested choices are written out below.)
_FLAT_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("<|{{ item['role'] }}|>", "<|begin_of_image|>"), "glmedge"),
    (("<|user|>", "<|endoftext|>"), "zephyr"),
    (("bos_token + message['role']",), "monarch"),
    (("<start_of_turn>",), "gemma"),
    (("'\\n\\nAssistant: ' + eos_token",), "orion"),
    (("GPT4 Correct ",), "openchat"),
)
_LATE_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("### Instruction:", "<|EOT|>"), "deepseek"),
    (("<|START_OF_TURN_TOKEN|>", "<|USER_TOKEN|>"), "command-r"),
    (("<|start_header_id|>", "<|end_header_id|>"), "llama3"),
    (("[gMASK]sop",), "chatglm3"),
    (("<用户>",), "minicpm"),
    (("'Assistant: ' + message['content'] + eos_token",), "deepseek2"),
    (("<｜Assistant｜>", "<｜User｜>", "<｜end▁of▁sentence｜>"), "deepseek3"),
)
_TAIL_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("message['role'] + additional_special_tokens[0] + message['content'] + "
      "additional_special_tokens[1]",), "gigachat"),
    (("<|role_start|>",), "megrez"),
    ((" Ассистент:",), "yandex"),
    (("<role>ASSISTANT</role>", "'HUMAN'"), "bailing"),
    (("<role>ASSISTANT</role>", "\"HUMAN\"", "<think>"), "bailing-think"),
    (("<role>ASSISTANT</role>", "<role>HUMAN</role>", "<|role_end|>"), "bailing2"),
    (("<|header_start|>", "<|header_end|>"), "llama4"),
    (("<|endofuserprompt|>",), "dots1"),
    (("<|extra_0|>", "<|extra_4|>"), "hunyuan-moe"),
    (("<|start|>", "<|channel|>"), "gpt-oss"),
    (("<｜hy_Assistant｜>", "<｜hy_begin▁of▁sentence｜>"), "hunyuan-vl"),
    (("<｜hy_Assistant｜>", "<｜hy_place▁holder▁no▁3｜>"), "hunyuan-dense"),
    (("<|im_assistant|>assistant<|im_middle|>",), "kimi-k2"),
    (("<seed:bos>",), "seed_oss"),
    (("'Assistant: '  + message['content'] + '<|separator|>",), "grok-2"),
    (("[unused9]系统：[unused10]",), "pangu-embedded"),
    (("<|begin|>", "<|end|>", "<|content|>"), "solar-open"),
)


def _first_rule(template: str, rules: tuple[tuple[tuple[str, ...], str], ...]) -> str | None:
    for markers, name in rules:
        if all(marker in template for marker in markers):
            return name
    return None


def _mistral_or_llama2(template: str) -> str:
    """The ``[INST]`` branch of llm_chat_detect_template."""
    if "[SYSTEM_PROMPT]" in template:
        return "mistral-v7"
    if "' [INST] ' + system_message" in template or "[AVAILABLE_TOOLS]" in template:
        if " [INST]" in template:
            return "mistral-v1"
        return "mistral-v3-tekken" if '"[INST]"' in template else "mistral-v3"
    if "content.strip()" in template:
        return "llama2-sys-strip"
    if "bos_token + '[INST]" in template:
        return "llama2-sys-bos"
    return "llama2-sys" if "<<SYS>>" in template else "llama2"


def _role_tokens(template: str) -> str | None:
    """The ``<|assistant|>`` / ``<|start_of_role|>`` / ``[|system|]`` branches."""
    if "<|assistant|>" in template and "<|user|>" in template:
        if "<|tool_declare|>" in template:
            return "exaone-moe"
        return "falcon3" if "</s>" in template else "glmedge"
    return None


def _middle(template: str) -> str | None:
    """The branches between the late rules and the tail rules."""
    if all(marker in template for marker in ("[|system|]", "[|assistant|]", "[|endofturn|]")):
        return "exaone4" if "[|tool|]" in template else "exaone3"
    if "rwkv-world" in template or \
            "{{- 'User: ' + message['content']|trim + '\\n\\n' -}}" in template:
        return "rwkv-world"
    if "<|start_of_role|>" in template:
        if "<tool_call>" in template or "<tools>" in template:
            return "granite-4.0" if "g4_default_system_message" in template else "granite-4.1"
        return "granite"
    return None


def detect_builtin(template: str) -> str | None:
    """The builtin template llama.cpp's llm_chat_detect_template picks, or None (UNKNOWN)."""
    if template in BUILTIN_TEMPLATES:
        return template
    if "<|im_start|>" in template:
        if "<|im_sep|>" in template:
            return "phi4"
        return "smolvlm" if "<end_of_utterance>" in template else "chatml"
    if template.startswith("mistral") or "[INST]" in template:
        return _mistral_or_llama2(template)
    if "<|assistant|>" in template and "<|end|>" in template:
        return "phi3"
    if "[gMASK]<sop>" in template:
        return "chatglm4"
    found = _role_tokens(template) or _first_rule(template, _FLAT_RULES)
    if found:
        return found
    if "USER: " in template and "ASSISTANT: " in template:
        return "vicuna-orca" if "SYSTEM: " in template else "vicuna"
    return (_first_rule(template, _LATE_RULES) or _middle(template)
            or _first_rule(template, _TAIL_RULES))


def normalise(template: str) -> str:
    """The template with whitespace control, whitespace around tags and whitespace runs folded,
    so that a template re-indented or saved with other line endings hashes the same."""
    text = template.replace("\r\n", "\n")
    text = re.sub(r"\{([%{#])-", r"{\1", text)
    text = re.sub(r"-([%}#])\}", r"\1}", text)
    text = re.sub(r"\s*(\{[%{#])", r"\1", text)  # whitespace next to a tag is layout
    text = re.sub(r"([%}#]\})\s*", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def normalised_hash(template: str) -> str:
    return hashlib.sha256(normalise(template).encode("utf-8")).hexdigest()


def known_as(template: str) -> str | None:
    """The real template this one is (after normalisation), or None."""
    return KNOWN_TEMPLATE_HASHES.get(normalised_hash(template))
