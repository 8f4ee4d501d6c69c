"""Static analysis of a chat template (``tokenizer.chat_template``) for ``gguf-inspect audit``.

The template is parsed with jinja2 (a sandboxed environment, parse only) and its syntax tree is
walked; it is never rendered, compiled or executed. Findings cover the public attack shapes:
server-side template injection gadgets (CVE-2024-34359 / GHSA-56xg-wfcc-g829 in
llama-cpp-python, CVE-2026-5760 in SGLang) and code-free backdoors (fixed text with links,
instructions triggered by words in the user's message, hidden characters). jinja2 is imported
here only, so that the header-only path never loads it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterator

from gguf_inspect.llamacpp.chat_template import detect_builtin, known_as
from gguf_inspect.reports.findings import ERROR, INFO, WARNING, Finding

REFERENCE_INJECTION = ("CVE-2024-34359 / GHSA-56xg-wfcc-g829 (llama-cpp-python), "
                       "CVE-2026-5760 (SGLang): Jinja2 server-side template injection")
REFERENCE_BACKDOOR = "code-free chat-template backdoors (scans of public GGUF chat templates)"
REFERENCE_DETECT = "llm_chat_detect_template in src/llama-chat.cpp"

# What chat templates call and filter with (the real templates llama.cpp ships in
# models/templates use no more); anything else is worth a look, not necessarily hostile.
KNOWN_FUNCTIONS = frozenset({"namespace", "raise_exception", "range", "strftime_now", "dict",
                             "caller"})
KNOWN_METHODS = frozenset({
    "get", "split", "rsplit", "items", "keys", "values", "strip", "lstrip", "rstrip",
    "startswith", "endswith", "replace", "pop", "append", "extend", "insert", "update", "lower",
    "upper", "title", "capitalize", "count", "find", "rfind", "index", "join", "splitlines",
    "isdigit", "isalpha", "isspace", "cycle", "format"})
EXTRA_FILTERS = frozenset({"tojson", "from_json", "items"})
# Python objects a template reaches through jinja2's globals (or a web framework's).
PYTHON_GLOBALS = frozenset({"self", "cycler", "joiner", "lipsum", "config", "request",
                            "url_for", "get_flashed_messages", "session", "os", "sys",
                            "builtins", "__builtins__", "__import__", "eval", "exec", "open"})
# Attributes and methods of sandbox-escape chains that are not dunder names.
ATTRIBUTE_GADGETS = frozenset({"mro", "func_globals", "func_code", "gi_frame", "gi_code",
                               "f_globals", "f_locals", "f_back", "f_builtins", "tb_frame",
                               "cr_frame", "ag_frame", "co_code", "im_func", "im_self"})
CALL_GADGETS = frozenset({"popen", "system", "spawn", "eval", "exec", "compile", "open",
                          "import_module", "load_module", "getattr", "setattr", "delattr",
                          "check_output", "read", "write", "format_map", "mro"})
FOLD_LIMIT = 4096  # longest string built from constants while folding (a "_" * 10**9 stays cheap)
DUNDER = re.compile(r"__\w+__")
URL = re.compile(r"\b(?:https?|ftp|wss?|file)://[^\s'\"<>]+|\bwww\.[\w-]+\.[a-z]{2,}",
                 re.IGNORECASE)
IPV4 = re.compile(r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)"
                  r"(?![\w.])")
HEX_BLOB = re.compile(r"\b[0-9a-fA-F]{32,}\b")
BASE64_BLOB = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")
SPECIAL_TOKEN = re.compile(r"<\|[^|<>\s]{1,64}\|>|<｜[^｜<>\s]{1,64}｜>")
WORD = re.compile(r"[^\W\d_]{2,}")
BIDI = frozenset(chr(code) for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A),
                                         0x200E, 0x200F, 0x061C))
MAX_LISTED = 10  # items named in one finding
PROSE_WORDS = 8  # fixed text of this many words added to every conversation is reported


@dataclass(frozen=True)
class TemplateReport:
    key: str  # the metadata key the template came from
    sha256: str  # of the template's UTF-8 bytes as stored
    length: int  # characters
    known_as: str | None  # the real template it is, by normalised hash
    llama_cpp_builtin: str | None  # what llm_chat_detect_template would take it for
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class _Text:
    """A piece of fixed text the template can emit, and when it does."""

    text: str
    line: int
    trigger: str | None  # the words of the user's message that switch it on, if any
    every_conversation: bool  # emitted outside any loop (once per conversation)


def analyse_template(template: str, key: str = "tokenizer.chat_template",
                     vocabulary: frozenset[str] | None = None) -> TemplateReport:
    """Every finding about one chat template; the template is parsed, never rendered."""
    findings = list(_character_findings(template, key))
    try:
        tree = _parse(template)
    except RecursionError:
        findings.append(Finding("template.unanalysable", ERROR, key,
                                "nested too deeply to parse: it cannot be checked",
                                REFERENCE_INJECTION))
        tree = None
    except Exception as error:  # jinja2's TemplateSyntaxError; the loaders would refuse it too
        findings.append(Finding(
            "template.syntax", WARNING, f"{key} line {getattr(error, 'lineno', '?')}",
            f"not valid Jinja2 ({error}); jinja2-based servers refuse to load it",
            "jinja2 parser"))
        tree = None
    if tree is not None:
        try:
            findings += _Walker(key, vocabulary).run(tree)
        except RecursionError:
            findings.append(Finding("template.unanalysable", ERROR, key,
                                    "nested too deeply to walk: it cannot be checked",
                                    REFERENCE_INJECTION))
    builtin = detect_builtin(template)
    if builtin is not None:
        findings.append(Finding("template.llama-cpp-builtin", INFO, key,
                                f"llama.cpp's own formatter would treat it as '{builtin}'",
                                REFERENCE_DETECT))
    return TemplateReport(key=key, sha256=hashlib.sha256(template.encode("utf-8")).hexdigest(),
                          length=len(template), known_as=known_as(template),
                          llama_cpp_builtin=builtin, findings=tuple(findings))


def _parse(template: str) -> Any:
    """The syntax tree, with the extensions transformers (and so llama-cpp-python) enables."""
    from jinja2 import nodes
    from jinja2.ext import Extension
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationTag(Extension):
        """transformers' ``{% generation %}`` block (AssistantTracker): parsed as its body."""

        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.Scope(body, lineno=lineno)

    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True,
        extensions=["jinja2.ext.loopcontrols", GenerationTag])
    return environment.parse(template)  # lexes and parses; compiles and runs nothing


def _character_findings(template: str, key: str) -> Iterator[Finding]:
    """Bidi controls and invisible characters anywhere in the template."""
    bidi = sorted({f"U+{ord(c):04X}" for c in template if c in BIDI})
    if bidi:
        yield Finding("template.bidi", ERROR, key,
                      f"bidirectional control characters {', '.join(bidi[:MAX_LISTED])}: what "
                      "a reviewer reads is not what the template does", REFERENCE_BACKDOOR)
    tags = sum(0xE0000 <= ord(c) <= 0xE007F for c in template)
    if tags:
        yield Finding("template.tag-characters", ERROR, key,
                      f"{tags} Unicode tag character(s): text the model reads and a reviewer "
                      "does not see", REFERENCE_BACKDOOR)
    invisible = sorted({f"U+{ord(c):04X}" for c in template
                        if unicodedata.category(c) == "Cf" and c not in BIDI
                        and not 0xE0000 <= ord(c) <= 0xE007F})
    if invisible:
        yield Finding("template.invisible", WARNING, key,
                      f"invisible format characters {', '.join(invisible[:MAX_LISTED])}",
                      REFERENCE_BACKDOOR)


def _fold(node: Any, nodes: Any) -> str | None:
    """The string an expression built only from constants evaluates to, else None.

    This is what reveals names assembled at render time ("__cla" ~ "ss__", "_" * 2,
    ["__", "globals", "__"]|join); it runs no template code, only str operations on constants.
    """
    if isinstance(node, nodes.Const):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, nodes.TemplateData):
        return node.data
    if isinstance(node, (nodes.Add, nodes.Concat)):
        parts = [node.left, node.right] if isinstance(node, nodes.Add) else node.nodes
        folded = [_fold(part, nodes) for part in parts]
        if any(part is None for part in folded):
            return None
        return "".join(folded)[:FOLD_LIMIT]  # type: ignore[arg-type]
    if isinstance(node, nodes.Mul) and isinstance(node.right, nodes.Const) \
            and isinstance(node.right.value, int):
        text = _fold(node.left, nodes)
        return None if text is None else (text * min(node.right.value, FOLD_LIMIT))[:FOLD_LIMIT]
    if isinstance(node, nodes.Filter) and node.node is not None:
        return _fold_filter(node, nodes)
    return None


def _fold_filter(node: Any, nodes: Any) -> str | None:
    if node.name == "join" and isinstance(node.node, (nodes.List, nodes.Tuple)):
        items = [_fold(item, nodes) for item in node.node.items]
        separator = _fold(node.args[0], nodes) if node.args else ""
        if separator is None or any(item is None for item in items):
            return None
        return separator.join(items)[:FOLD_LIMIT]  # type: ignore[arg-type]
    text = _fold(node.node, nodes)
    if text is None:
        return None
    if node.name in ("lower", "upper", "trim", "string", "safe", "e", "escape", "reverse"):
        changed = {"lower": str.lower, "upper": str.upper, "trim": str.strip,
                   "reverse": lambda s: s[::-1]}.get(node.name, str)
        return changed(text)
    if node.name == "replace" and len(node.args) >= 2:
        old, new = (_fold(arg, nodes) for arg in node.args[:2])
        if old is not None and new is not None:
            return text.replace(old, new)[:FOLD_LIMIT]
    if node.name == "format":  # printf-style; constants only, so "%c" % 95 and the like
        if re.search(r"%(?![sdicr%])", text):  # a width or precision could ask for gigabytes
            return None
        values = [arg.value for arg in node.args if isinstance(arg, nodes.Const)]
        if len(values) == len(node.args):
            try:
                return (text % tuple(values))[:FOLD_LIMIT]
            except (TypeError, ValueError, OverflowError):
                return None
    return None


def _is_content(node: Any, nodes: Any) -> bool:
    """Whether an expression reads a message's content (``message.content``, ``m['content']``,
    or a variable named content)."""
    for child in (node, *node.find_all((nodes.Getattr, nodes.Getitem, nodes.Name))):
        if isinstance(child, nodes.Getattr) and child.attr == "content":
            return True
        if isinstance(child, nodes.Getitem) and isinstance(child.arg, nodes.Const) \
                and child.arg.value == "content":
            return True
        if isinstance(child, nodes.Name) and "content" in child.name:
            return True
    return False


class _Walker:
    """One pass over the syntax tree, collecting findings and the fixed text it emits."""

    def __init__(self, key: str, vocabulary: frozenset[str] | None) -> None:
        from jinja2 import filters, nodes

        self.key, self.vocabulary, self.nodes = key, vocabulary, nodes
        self.known_filters = (frozenset(filters.FILTERS) - {"attr"}) | EXTRA_FILTERS
        self.findings: list[Finding] = []
        self.texts: list[_Text] = []
        self.local_names: set[str] = set()

    def where(self, node: Any) -> str:
        return f"{self.key} line {node.lineno}"

    def add(self, node: Any, finding_id: str, severity: str, message: str,
            reference: str = REFERENCE_INJECTION) -> None:
        self.findings.append(Finding(finding_id, severity, self.where(node), message, reference))

    def run(self, tree: Any) -> list[Finding]:
        nodes = self.nodes
        for node in tree.find_all((nodes.Name, nodes.Macro)):
            if isinstance(node, nodes.Macro) or node.ctx in ("store", "param"):
                self.local_names.add(node.name)
        for node in tree.find_all(nodes.Node):
            self.check(node)
        self.collect_text(tree.body, trigger=None, in_loop=False)
        self.check_texts()
        return self.findings

    def check(self, node: Any) -> None:
        nodes = self.nodes
        if isinstance(node, nodes.Getattr):
            self.check_name(node, node.attr, "attribute")
        elif isinstance(node, nodes.Getitem):
            name = _fold(node.arg, nodes)
            if name is not None:
                self.check_name(node, name, "item")
        elif isinstance(node, nodes.Name) and node.ctx == "load" \
                and node.name in PYTHON_GLOBALS and node.name not in self.local_names:
            self.add(node, "template.python-global", ERROR,
                     f"uses the jinja2 global '{node.name}', a way to Python objects that no "
                     "chat template needs")
        elif isinstance(node, nodes.Filter):
            self.check_filter(node)
        elif isinstance(node, nodes.Call):
            self.check_call(node)
        elif isinstance(node, (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
            self.add(node, "template.loader", WARNING,
                     f"{type(node).__name__.lower()} reaches other templates through a loader")
        if isinstance(node, (nodes.Const, nodes.Add, nodes.Concat, nodes.Mul, nodes.Filter)):
            text = _fold(node, nodes)
            if text and DUNDER.search(text):
                self.add(node, "template.dunder-string", ERROR,
                         f"builds the Python internal name '{DUNDER.search(text).group()}', "
                         "the start of a sandbox escape")

    def check_name(self, node: Any, name: str, kind: str) -> None:
        if name.startswith("_"):
            self.add(node, "template.private-access", ERROR,
                     f"reads the {kind} '{name[:64]}': Python internals (__class__, __mro__, "
                     "__subclasses__, __globals__) are how a template escapes to code")
        elif name in ATTRIBUTE_GADGETS:
            self.add(node, "template.gadget", ERROR,
                     f"reads the {kind} '{name}', a link of sandbox-escape chains")

    def check_filter(self, node: Any) -> None:
        nodes = self.nodes
        if node.name == "attr":
            name = _fold(node.args[0], nodes) if node.args else None
            if name is None:
                self.add(node, "template.attr-dynamic", ERROR,
                         "the attr filter with a name computed at render time hides what it "
                         "reads")
            elif name.startswith("_") or name in ATTRIBUTE_GADGETS:
                self.add(node, "template.private-access", ERROR,
                         f"the attr filter reads '{name[:64]}' (escaped or built names included)")
            else:
                self.add(node, "template.unusual-filter", WARNING,
                         f"the attr filter (reads '{name[:64]}'); chat templates do not use it")
            return
        for keyword in node.kwargs:
            value = _fold(keyword.value, nodes)
            if keyword.key == "attribute" and value is not None and value.startswith("_"):
                self.add(node, "template.private-access", ERROR,
                         f"the {node.name} filter reads the attribute '{value[:64]}'")
        if node.name not in self.known_filters and node.name not in self.local_names:
            self.add(node, "template.unusual-filter", WARNING,
                     f"the filter '{node.name}' is not one chat templates use")

    def check_call(self, node: Any) -> None:
        nodes = self.nodes
        callee = node.node
        if isinstance(callee, nodes.Name):
            if callee.name not in KNOWN_FUNCTIONS | self.local_names | PYTHON_GLOBALS:
                self.add(node, "template.unusual-call", WARNING,
                         f"calls '{callee.name}', not a function chat templates use")
        elif isinstance(callee, nodes.Getattr):
            self.check_method(node, callee)
        else:
            self.add(node, "template.unusual-call", WARNING,
                     f"calls the result of a {type(callee).__name__} expression")

    def check_method(self, node: Any, callee: Any) -> None:
        method = callee.attr
        if method in CALL_GADGETS:
            self.add(node, "template.gadget", ERROR,
                     f"calls .{method}(), a link of sandbox-escape chains")
        elif method == "format":
            text = _fold(callee.node, self.nodes)
            if text is None or re.search(r"\{[^{}]*[.\[][^{}]*\}", text):
                self.add(node, "template.format-fields", ERROR,
                         "str.format with a format string that reads attributes or items, or "
                         "one built at render time (the CVE-2016-10745 sandbox escape shape)")
        elif method not in KNOWN_METHODS and not method.startswith("_"):
            self.add(node, "template.unusual-call", WARNING,
                     f"calls the method .{method}(), not one chat templates use")

    def collect_text(self, body: list[Any], trigger: str | None, in_loop: bool) -> None:
        """Record the fixed text each Output can emit, with the branch and loop it sits in."""
        nodes = self.nodes
        for node in body:
            if isinstance(node, nodes.Output):
                for child in node.nodes:
                    text = _fold(child, nodes)
                    if text is None:  # an expression: its constant pieces are still emitted
                        text = " ".join(self.emitted_constants(child))
                    if text.strip():
                        self.texts.append(_Text(text, child.lineno, trigger, not in_loop))
            elif isinstance(node, nodes.If):
                found = self.trigger_of(node.test) or trigger
                self.collect_text(node.body, found, in_loop)
                for branch in node.elif_:
                    self.collect_text([branch], trigger, in_loop)
                self.collect_text(node.else_, trigger, in_loop)
            elif isinstance(node, nodes.For):
                self.collect_text(node.body, trigger, True)
                self.collect_text(node.else_, trigger, in_loop)
            elif hasattr(node, "body") and isinstance(node.body, list):  # Macro, Scope, blocks
                self.collect_text(node.body, trigger, in_loop or isinstance(node, nodes.Macro))
            elif isinstance(node, nodes.Assign):  # a text set now and emitted later
                text = _fold(node.node, nodes)
                if text and text.strip():
                    self.texts.append(_Text(text, node.lineno, trigger, False))

    def emitted_constants(self, expression: Any) -> Iterator[str]:
        """The string constants of an expression, less those only raise_exception shows."""
        nodes = self.nodes
        raised = {id(const) for call in (expression, *expression.find_all(nodes.Call))
                  if isinstance(call, nodes.Call) and isinstance(call.node, nodes.Name)
                  and call.node.name == "raise_exception"
                  for const in call.find_all(nodes.Const)}
        for const in expression.find_all(nodes.Const):
            if id(const) not in raised and isinstance(const.value, str) and const.value:
                yield const.value

    def trigger_of(self, test: Any) -> str | None:
        """The words a branch's test looks for in a message's content, if it does."""
        nodes = self.nodes
        inside = [test, *test.find_all(nodes.Node)]
        for compare in (node for node in inside if isinstance(node, nodes.Compare)):
            operands = [compare.expr, *(op.expr for op in compare.ops)]
            if compare.ops and compare.ops[0].op in ("in", "notin", "eq", "ne") \
                    and any(_is_content(operand, nodes) for operand in operands):
                words = [_fold(o, nodes) for o in operands if isinstance(o, nodes.Const)]
                if any(w and WORD.search(w) and "<" not in w for w in words):
                    return next(w for w in words if w)
        for call in (node for node in inside if isinstance(node, nodes.Call)):
            if isinstance(call.node, nodes.Getattr) and _is_content(call.node.node, nodes) \
                    and call.args and isinstance(call.args[0], nodes.Const):
                word = call.args[0].value
                if isinstance(word, str) and WORD.search(word) \
                        and not SPECIAL_TOKEN.fullmatch(word) and "<" not in word:
                    return word
        return None

    def check_texts(self) -> None:
        for piece in self.texts:
            self.check_text(piece)
        prose = [piece for piece in self.texts if piece.every_conversation and not piece.trigger
                 and len(WORD.findall(SPECIAL_TOKEN.sub(" ", piece.text))) >= PROSE_WORDS]
        if prose:  # a default system prompt is common; a hidden one is what to look for
            first = " ".join(SPECIAL_TOKEN.sub(" ", prose[0].text).split())
            self.findings.append(Finding(
                "template.fixed-text", INFO, f"{self.key} line {prose[0].line}",
                f"{len(prose)} piece(s) of fixed prose outside the message loop, such as a "
                f"default system prompt: '{first[:120]}'", REFERENCE_BACKDOOR))
        emitted = {token for piece in self.texts for token in SPECIAL_TOKEN.findall(piece.text)}
        if self.vocabulary is not None:
            missing = sorted(emitted - self.vocabulary)
            if missing:
                self.findings.append(Finding(
                    "template.unknown-special-token", WARNING, self.key,
                    f"emits {len(missing)} special token(s) the vocabulary lacks: "
                    f"{', '.join(missing[:MAX_LISTED])} (tokenized as plain text)",
                    "llama_vocab::impl::tokenize in src/llama-vocab.cpp"))

    def check_text(self, piece: _Text) -> None:
        where = f"{self.key} line {piece.line}"
        links = URL.findall(piece.text) + IPV4.findall(piece.text)
        when = (f"when a message contains '{piece.trigger[:40]}'" if piece.trigger else
                "in every conversation" if piece.every_conversation else "in the prompt")
        if links:
            self.findings.append(Finding(
                "template.link", ERROR, where,
                f"puts {', '.join(link[:80] for link in links[:3])} into the prompt {when}",
                REFERENCE_BACKDOOR))
        prose = " ".join(SPECIAL_TOKEN.sub(" ", piece.text).split())
        if piece.trigger and len(WORD.findall(prose)) >= 3:
            self.findings.append(Finding(
                "template.content-trigger", WARNING, where,
                f"adds fixed text {when}: '{prose[:120]}'", REFERENCE_BACKDOOR))
        for pattern, what in ((HEX_BLOB, "hex"), (BASE64_BLOB, "base64-like")):
            blob = pattern.search(piece.text)
            if blob and re.search(r"\d", blob.group()) and re.search(r"[A-Za-z]", blob.group()):
                self.findings.append(Finding(
                    "template.blob", WARNING, where,
                    f"emits a {len(blob.group())}-character {what} blob '{blob.group()[:40]}…'",
                    REFERENCE_BACKDOOR))
                break
