# Usage: python tools/make_known_templates.py SDIST_ROOT > gguf_inspect/llamacpp/known_templates.py
"""Generate gguf_inspect/llamacpp/known_templates.py from llama.cpp's models/templates and
llama-cpp-python's llama_chat_format constants (llama-cpp-python 0.3.36 sdist)."""
import glob, os, sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gguf_inspect.llamacpp.chat_template import normalised_hash  # noqa
root = sys.argv[1]
table = {}

src = open(os.path.join(root, "llama_cpp/llama_chat_format.py")).read()
import ast
mod = ast.parse(src)
consts = {}
for node in mod.body:
    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and node.targets[0].id.endswith("CHAT_TEMPLATE"):
        consts[node.targets[0].id] = ast.literal_eval(node.value)
names = {"CHATML_CHAT_TEMPLATE": "chatml", "LLAMA3_INSTRUCT_CHAT_TEMPLATE": "llama3-instruct",
         "MISTRAL_INSTRUCT_CHAT_TEMPLATE": "mistral-instruct", "MIXTRAL_INSTRUCT_CHAT_TEMPLATE": "mixtral-instruct"}
for const, name in names.items():
    table.setdefault(normalised_hash(consts[const]), []).append(name)
for path in sorted(glob.glob(os.path.join(root, "vendor/llama.cpp/models/templates/*.jinja"))):
    name = os.path.basename(path)[:-len(".jinja")]
    table.setdefault(normalised_hash(open(path, encoding="utf-8").read()), []).append(name)
print('"""Normalised SHA-256 (chat_template.normalise) of real chat templates -> their names.\n')
print("Generated from the llama.cpp vendored by llama-cpp-python 0.3.36: every file of")
print("vendor/llama.cpp/models/templates/ (named by file, as llama.cpp's README there names the")
print("model each came from), and llama-cpp-python's own constants in llama_cpp/llama_chat_format.py")
print('(chatml, llama3-instruct, mistral-instruct, mixtral-instruct). Hashes only: no template text.\n"""\n')
print("KNOWN_TEMPLATE_HASHES: dict[str, str] = {")
for digest, found in table.items():
    print(f'    "{digest}":\n        "{" = ".join(found)}",')
print("}")
