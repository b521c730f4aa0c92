"""MkDocs hook: the params reference (docs/params.md), generated at build time from the typed configs.

Walks ``pipeline.params.Params`` with ``dataclasses.fields`` and ``typing.get_type_hints``. For
each leaf key it writes the full dotted name, the type (Literal choices, lists, tuples, null), the
dataclass default if any, the value in the repo's ``params.yaml`` and the ``# comment`` that ends the
field's line in the source (read with ``inspect.getsource`` + ``tokenize``); each section shows its
class docstring. A config class may declare registry-keyed sections in a ClassVar ``__sections__``:
params keys of its section that are registered names are built with the member's config class and
stored, by name, in a mapping field. Accepted forms: ``pipeline.core.config.Sections(field, kind,
names, config)`` (``names()`` lists the members, ``config(name)`` gives a member's config dataclass),
or a ``(field_name, registry, config_attr)`` triple (``registry.get(name).<config_attr>``), or a
sequence of them. Every member's config class is documented under ``<section>.<name>`` (or
``<section>.<field>.<name>`` when params.yaml nests them under the field). A class without
``__sections__`` is walked by its dataclass fields only. The hook imports ``pipeline.params``
and whatever resolving a member's config class imports (``registry.get``), nothing else.

The page must hold the marker ``<!-- params-reference -->``; the generated text replaces it. A
params.yaml key that no config declares is a warning, so ``mkdocs build --strict`` fails on it.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import io
import logging
import sys
import textwrap
import tokenize
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from mkdocs.exceptions import PluginError

log = logging.getLogger("mkdocs.hooks.params_reference")

PAGE = "params.md"  # relative to docs_dir
MARKER = "<!-- params-reference -->"
PARAMS_MODULE = "pipeline.params"
ROOT_CLASS = "Params"
PARAMS_FILE = "params.yaml"  # beside mkdocs.yml
_MISSING = object()


@dataclasses.dataclass
class Key:
    key: str  # full dotted params key
    type: str
    default: str  # the dataclass default, "" when the key is required
    in_yaml: str  # the value in params.yaml, "" when absent
    doc: str  # the trailing comment of the field's line


@dataclasses.dataclass
class Section:
    key: str
    cls: type
    depth: int  # 1 = a top-level section of params.yaml
    doc: str = ""
    note: str = ""  # where a registry-keyed section comes from
    keys: list[Key] = dataclasses.field(default_factory=list)


# --- MkDocs events -------------------------------------------------------------------------------


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise PluginError(f"params_reference hook: {PAGE} must contain the marker {MARKER}")
    root = Path(config.config_file_path).resolve().parent
    return markdown.replace(MARKER, generate(root / PARAMS_FILE))


def on_serve(server: Any, config: Any, builder: Any) -> Any:
    root = Path(config.config_file_path).resolve().parent
    server.watch(str(root / PARAMS_FILE))
    server.watch(str(root / "pipeline" / "core" / "params.py"))
    return server


# --- the generator ---------------------------------------------------------------------------------


def generate(params_file: Path) -> str:
    """The reference as Markdown: one heading per section, one table row per leaf key."""
    try:
        module = importlib.import_module(PARAMS_MODULE)
    except ImportError as err:  # the project is not installed in this environment
        raise PluginError(f"params_reference hook: cannot import {PARAMS_MODULE}: {err}") from err
    raw = yaml.safe_load(params_file.read_text(encoding="utf-8")) if params_file.is_file() else {}
    if not params_file.is_file():
        log.warning("params_reference: %s not found; the 'params.yaml' column stays empty", params_file)
    sections = list(walk(getattr(module, ROOT_CLASS), "", raw or {}, 0))
    for key in undeclared_keys(raw or {}, sections):
        log.warning("params_reference: params.yaml key '%s' is declared by no config class", key)
    n_keys = sum(len(s.keys) for s in sections)
    out = [
        f"*Generated from `{PARAMS_MODULE}.{ROOT_CLASS}` and `{PARAMS_FILE}` when the site is built: "
        f"{n_keys} keys in {sum(1 for s in sections if s.depth == 1)} top-level sections.*",
        "",
    ]
    for section in sections[1:]:  # sections[0] is the root (Params itself)
        out += render(section)
    return "\n".join(out)


def walk(cls: type, prefix: str, raw: Any, depth: int, note: str = "") -> Iterator[Section]:
    """``cls``'s section, then its nested sections depth-first (fields, then registry members)."""
    hints = _type_hints(cls)
    comments = field_comments(cls)
    fields = dataclasses.fields(cls)
    names = {f.name for f in fields}
    raw = raw if isinstance(raw, Mapping) else {}
    section = Section(prefix, cls, depth, doc=class_doc(cls), note=note)
    children: list[tuple[str, type, Any, str]] = []
    containers: set[str] = set()
    members: list[tuple[str, type, Any, str]] = []
    for part in registry_sections(cls):
        nested = isinstance(raw.get(part.field), Mapping)  # params.yaml nests the members under the field
        base, base_raw = (_join(prefix, part.field), raw[part.field]) if nested else (prefix, raw)
        if part.field in hints and _is_mapping(hints[part.field]):
            containers.add(part.field)  # filled from the member sections: no key of its own
        for name in part.names():
            if not nested and name in names:
                continue  # a typed field of the same name documents it
            member_cls = part.config(name)
            if not (isinstance(member_cls, type) and dataclasses.is_dataclass(member_cls)):
                log.info("params_reference: %s %r has no config dataclass; skipped", part.kind, name)
                continue
            where = f"Registered {part.kind} `{name}`: config `{member_cls.__name__}` from `{member_cls.__module__}`."
            members.append((_join(base, name), member_cls, base_raw.get(name, {}), where))
    for field in fields:
        if field.name in containers:
            continue
        key = _join(prefix, field.name)
        tp = hints.get(field.name, field.type)
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            children.append((key, tp, raw.get(field.name, {}), ""))
            continue
        value = raw.get(field.name, _MISSING)
        section.keys.append(
            Key(
                key=key,
                type=type_text(tp),
                default=_default(field),
                in_yaml="" if value is _MISSING else value_text(value),
                doc=comments.get(field.name, ""),
            )
        )
    yield section
    for key, child, child_raw, where in children + members:
        yield from walk(child, key, child_raw, depth + 1, where)


@dataclasses.dataclass
class Members:
    """One registry-keyed part of a section, whatever form ``__sections__`` gives it in."""

    field: str  # the mapping field that holds {name: config}
    kind: str  # what a member is ("visual extractor")
    names: Callable[[], list[str]]
    config: Callable[[str], Any]  # member name -> its config dataclass


def registry_sections(cls: type) -> list[Members]:
    """``cls.__sections__`` as a list of ``Members``; [] when the class has none.

    Accepted forms: a ``pipeline.core.config.Sections`` (``field``, ``kind``, ``names()``,
    ``config(name)``), a ``(field_name, registry, config_attr)`` triple (members built with
    ``registry.get(name).<config_attr>``), or a sequence of either.
    """
    spec = getattr(cls, "__sections__", None)
    if spec is None:
        return []
    entries = [spec] if _is_entry(spec) else list(spec) if isinstance(spec, (list, tuple)) else [spec]
    out = []
    for entry in entries:
        if (
            hasattr(entry, "field")
            and callable(getattr(entry, "names", None))
            and callable(getattr(entry, "config", None))
        ):
            out.append(Members(entry.field, getattr(entry, "kind", "member"), entry.names, entry.config))
        elif _is_entry(entry) and hasattr(entry[1], "names") and hasattr(entry[1], "get"):
            field_name, registry, attr = entry
            out.append(
                Members(
                    field_name,
                    getattr(registry, "kind", "member"),
                    registry.names,
                    lambda name, registry=registry, attr=attr: getattr(registry.get(name), attr, None),
                )
            )
        else:
            log.warning("params_reference: %s.__sections__: cannot read %r", cls.__name__, entry)
    return out


def _is_entry(spec: Any) -> bool:
    return hasattr(spec, "field") or (isinstance(spec, tuple) and len(spec) == 3 and isinstance(spec[0], str))


def undeclared_keys(raw: Any, sections: list[Section]) -> list[str]:
    """params.yaml keys (dotted) that neither a section nor a leaf key of the reference covers."""
    known_sections = {s.key.rsplit(".", i)[0] for s in sections for i in range(s.key.count(".") + 1)}
    known_keys = {k.key for s in sections for k in s.keys}
    out: list[str] = []

    def visit(node: Any, prefix: str) -> None:
        for name, value in node.items():
            key = _join(prefix, str(name))
            if key in known_keys:
                continue
            if key in known_sections and isinstance(value, Mapping):
                visit(value, key)
            else:
                out.append(key)

    if isinstance(raw, Mapping):
        visit(raw, "")
    return out


# --- pieces --------------------------------------------------------------------------------------


def field_comments(cls: type) -> dict[str, str]:
    """Field name -> the ``# comment`` ending its line in the class body (read from the source)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):  # no source (built in a REPL, frozen): no comments
        return {}
    out: dict[str, str] = {}
    depth, body_indent, field_at_line = 0, None, {}
    tokens = list(tokenize.generate_tokens(io.StringIO(textwrap.dedent(source)).readline))
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.INDENT:
            depth += 1
            body_indent = tok.end[1] if depth == 1 else body_indent
        elif tok.type == tokenize.DEDENT:
            depth -= 1
        elif (
            tok.type == tokenize.NAME
            and depth == 1
            and tok.start[1] == body_indent
            and i + 1 < len(tokens)
            and tokens[i + 1].string == ":"
        ):
            field_at_line[tok.start[0]] = tok.string
        elif tok.type == tokenize.COMMENT and tok.start[0] in field_at_line:
            out[field_at_line[tok.start[0]]] = tok.string.lstrip("#").strip()
    return out


def class_doc(cls: type) -> str:
    doc = cls.__doc__ or ""
    if doc.startswith(f"{cls.__name__}("):  # the signature dataclasses writes when there is no docstring
        return ""
    return _escape(inspect.cleandoc(doc).replace("``", "`"))


def type_text(tp: Any) -> str:
    """A params.yaml-oriented description of a field type (YAML lists for tuples, null for None)."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(f"`{value_text(a)}`" for a in args)
    if origin in (Union, types.UnionType):
        parts = [type_text(a) for a in args if a is not type(None)]
        return " or ".join(parts + (["`null`"] if type(None) in args else []))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            inner = type_text(args[0])
            return f"list of {'(' + inner + ')' if ' ' in inner else inner}"
        return "[" + ", ".join(type_text(a) for a in args) + "]"
    if origin in (list, set, frozenset):
        return f"list of {type_text(args[0])}" if args else "list"
    if origin in (dict, Mapping) or (isinstance(origin, type) and issubclass(origin, Mapping)):
        return f"mapping of {type_text(args[0])} to {type_text(args[1])}" if len(args) == 2 else "mapping"
    if tp is Any:
        return "any"
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return f"section `{tp.__name__}`"
    if isinstance(tp, type):
        return f"`{tp.__name__}`"
    return f"`{tp}`"


def value_text(value: Any) -> str:
    """A value as it would be written in params.yaml (flow style)."""
    plain = _plain(value)
    try:
        text = yaml.safe_dump(plain, default_flow_style=True, width=10**6, allow_unicode=True).strip()
    except yaml.YAMLError:
        return repr(value)
    return text[: -len("...")].strip() if text.endswith("\n...") else text


def render(section: Section) -> list[str]:
    level = "#" * min(section.depth + 1, 6)
    out = [f"{level} `{section.key}`", ""]
    if section.note:
        out += [section.note, ""]
    if section.doc:
        out += [section.doc, ""]
    if section.keys:
        out += [
            "| key | type | default | default in params.yaml | description |",
            "|---|---|---|---|---|",
        ]
        for k in section.keys:
            default = f"`{_cell(k.default)}`" if k.default else "required"
            in_yaml = f"`{_cell(k.in_yaml)}`" if k.in_yaml else "(not set)"
            out.append(f"| `{k.key}` | {_cell(k.type)} | {default} | {in_yaml} | {_prose(k.doc)} |")
        out.append("")
    return out


def _cell(text: str) -> str:
    return text.replace("|", "&#124;")


def _prose(text: str) -> str:
    """A source comment as a table cell: code spans kept, HTML and pipes escaped outside them."""
    return _cell(_escape(text))


def _escape(text: str) -> str:
    """Markdown prose from source text: ``<name>`` shown as written (not an HTML tag) outside code spans."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # the even parts are outside code spans
        parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        return value_text(field.default)
    if field.default_factory is not dataclasses.MISSING:
        try:
            return value_text(field.default_factory())
        except Exception:  # a factory that needs context: name it instead
            return getattr(field.default_factory, "__name__", "factory") + "()"
    return ""


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    return value


def _type_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation that does not resolve (e.g. a ClassVar under TYPE_CHECKING)
        module = vars(sys.modules.get(cls.__module__, types.ModuleType("_")))
        hints = {}
        for field in dataclasses.fields(cls):
            try:
                hints[field.name] = eval(field.type, module) if isinstance(field.type, str) else field.type
            except Exception:
                hints[field.name] = field.type
        return hints


def _is_mapping(tp: Any) -> bool:
    origin = get_origin(tp) or tp
    return isinstance(origin, type) and issubclass(origin, Mapping)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key
