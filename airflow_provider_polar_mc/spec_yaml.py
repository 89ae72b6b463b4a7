"""Reading a migration spec's YAML without the traps of a plain ``yaml.safe_load``.

``yaml.safe_load`` accepts documents that hurt a new user or the machine parsing DAG files:

* a key given twice silently keeps the last value (``throttle`` written twice loses the first);
* an alias bomb ("billion laughs") composes in microseconds but expands exponentially the moment
  anything walks it (``MemoryError`` after half a minute);
* 3,000 nested brackets exhaust Python's recursion limit (``RecursionError``);
* a file saved as latin-1 raises ``UnicodeDecodeError``.

:func:`read_spec_file` and :func:`load_spec_document` refuse each of these with a
:class:`~airflow_provider_polar_mc.exceptions.SpecError` naming the line, fast (the checks run while the
document is composed, before anything is expanded). The limits are in docs/spec.md. This module
imports nothing from Airflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from airflow_provider_polar_mc.exceptions import SpecError, SpecProblem

MAX_SPEC_BYTES = 1024 * 1024  # 1 MiB of YAML text
MAX_NESTING = 32  # levels of mappings/sequences (a spec needs 6)
MAX_NODES = 200_000  # YAML values after alias expansion (a 1,000-table spec has ~10,000)


class _Refused(yaml.MarkedYAMLError):
    """A document refused by a limit (not a syntax error): ``problem`` says which."""


try:  # libyaml scans and parses 5x faster; its events are composed here, in Python, to bound them
    from yaml._yaml import CParser as _CParser
except ImportError:  # pragma: no cover - PyYAML without libyaml
    _CParser = None

if _CParser is not None:

    class _EventLoader(_CParser, Composer, SafeConstructor, Resolver):
        """libyaml's events, PyYAML's Python composer (CParser would compose them, unbounded, in C)."""

        def __init__(self, stream: str):
            _CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

        get_single_node = Composer.get_single_node
        compose_document = Composer.compose_document
        compose_node = Composer.compose_node
        check_node = Composer.check_node
        get_node = Composer.get_node

else:  # pragma: no cover
    _EventLoader = yaml.SafeLoader  # type: ignore[assignment,misc]


class _BoundedLoader(_EventLoader):
    """PyYAML's safe loader with nesting and alias expansion bounded while composing.

    Every composed node's expanded size (itself plus everything below it, counting each alias use
    as a full copy of its anchor) is known as soon as the node is complete, so an alias bomb is
    refused after a few dozen events, long before any caller could expand it.
    """

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            if id(node) not in self._sizes:
                raise _Refused(problem="an alias refers to the mapping or list it is inside of "
                                       "(a recursive structure); a spec cannot be infinite", problem_mark=mark)
            return node
        self._depth += 1
        if self._depth > MAX_NESTING:
            raise _Refused(problem=f"nested deeper than {MAX_NESTING} levels; a spec needs at most 6",
                           problem_mark=mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if isinstance(node, SequenceNode):
            size = 1 + sum(self._sizes[id(child)] for child in node.value)
        elif isinstance(node, MappingNode):
            size = 1 + sum(self._sizes[id(key)] + self._sizes[id(value)] for key, value in node.value)
        else:
            size = 1
        if size > MAX_NODES:
            raise _Refused(problem=f"this value expands to more than {MAX_NODES:,} values (through &anchors "
                                   "and *aliases, like an alias bomb, or by sheer size)", problem_mark=mark)
        self._sizes[id(node)] = size
        return node


def read_spec_file(path: str | Path) -> str:
    """The text of a spec file: at most :data:`MAX_SPEC_BYTES`, UTF-8 (a BOM is allowed)."""
    source = str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        raise SpecError([SpecProblem("", f"spec file {source} does not exist")], source) from None
    except OSError as error:
        raise SpecError([SpecProblem("", f"cannot read spec file {source}: {error.strerror or error}")],
                        source) from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError([SpecProblem("", _too_big_message())], source)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpecError([SpecProblem("", _not_utf8_message(data, error))], source) from None


def load_spec_document(text: str, source: str | None = None) -> tuple[Any, list[SpecProblem]]:
    """Parse one YAML document: ``(document, duplicate-key problems)``, so the caller can report those
    with the rest of the spec's problems. Raises ``SpecError`` for anything else refused (size,
    nesting, alias expansion, syntax, encoding), naming the line."""
    if len(text) > MAX_SPEC_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_SPEC_BYTES:
        raise SpecError([SpecProblem("", _too_big_message())], source)
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None, []
        duplicates = _duplicate_keys(node)
        try:
            return loader.construct_document(node), duplicates
        except ValueError as error:  # e.g. an integer of more than 4,300 digits
            reason = str(error).split(";")[0]  # not the "set_int_max_str_digits()" advice
            raise SpecError([SpecProblem("", f"a value cannot be read: {reason}")], source) from None
    except _Refused as error:
        raise SpecError([SpecProblem("", f"refused: {_where(error.problem_mark)}{error.problem}")], source) from None
    except yaml.reader.ReaderError as error:
        raise SpecError([SpecProblem("", f"not valid YAML: {_reader_error_text(text, error)}")], source) from None
    except yaml.YAMLError as error:
        if "maximum nesting depth" in str(getattr(error, "problem", "")):  # libyaml scans ahead (1,000 levels)
            problem = f"nested deeper than {MAX_NESTING} levels; a spec needs at most 6"
            raise SpecError([SpecProblem("", f"refused: {_where(error.problem_mark)}{problem}")], source) from None
        raise SpecError([SpecProblem("", f"not valid YAML: {_yaml_error_text(error)}")], source) from None
    finally:
        if loader is not None:
            loader.dispose()


def _duplicate_keys(root: Node) -> list[SpecProblem]:
    """Every key given twice in one mapping, with its spec path and both lines.

    Walks the composed nodes (bounded by MAX_NODES), each mapping once even when aliased.
    """
    problems: list[SpecProblem] = []
    seen_mappings: set[int] = set()
    stack: list[tuple[Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, SequenceNode):
            stack.extend((child, f"{path}[{index}]") for index, child in reversed(list(enumerate(node.value))))
        elif isinstance(node, MappingNode):
            if id(node) in seen_mappings:
                continue
            seen_mappings.add(id(node))
            first_line: dict[tuple[str, str], int] = {}
            children: list[tuple[Node, str]] = []
            for key, value in node.value:
                name = key.value if isinstance(key, ScalarNode) else None
                child_path = f"{path}.{name}" if path and name is not None else (name or path)
                if name is not None:
                    identity = (key.tag, name)
                    line = key.start_mark.line + 1
                    if identity in first_line:
                        problems.append(SpecProblem(
                            child_path,
                            f"is given twice, on line {first_line[identity]} and on line {line} (YAML would "
                            "silently keep only the last); keep one",
                        ))
                    else:
                        first_line[identity] = line
                children.append((value, child_path))
            stack.extend(reversed(children))
    return problems


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""


def _yaml_error_text(error: yaml.YAMLError) -> str:
    problem = getattr(error, "problem", None)
    if problem is None:
        return str(error).replace("\n", " ")
    text = f"{_where(getattr(error, 'problem_mark', None))}{problem}"
    context, context_mark = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context:
        text += f" ({context}" + (f" at line {context_mark.line + 1}" if context_mark is not None else "") + ")"
    return text


def _reader_error_text(text: str, error: yaml.reader.ReaderError) -> str:
    position = error.position if isinstance(error.position, int) else 0
    if _CParser is not None:  # libyaml counts bytes of the UTF-8 text
        data = text.encode("utf-8", "surrogatepass")
        line_start = data.rfind(b"\n", 0, position) + 1
        line = data.count(b"\n", 0, position) + 1
        column = len(data[line_start:position].decode("utf-8", "ignore")) + 1
    else:  # pragma: no cover
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
    character = error.character if isinstance(error.character, str) else chr(error.character)
    return (f"line {line}, column {column}: character U+{ord(character):04X} is not allowed in YAML "
            "(a control character); remove it")


def _too_big_message() -> str:
    return f"the spec is larger than {MAX_SPEC_BYTES // (1024 * 1024)} MiB of YAML; refused (a spec for thousands " \
           "of tables fits easily: use `tables: all` with include/exclude patterns instead of listing every table)"


def _not_utf8_message(data: bytes, error: UnicodeDecodeError) -> str:
    offset = error.start
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return (f"is not UTF-8 text: byte 0x{data[offset]:02x} at line {line}, column {column} cannot be decoded "
            "(the file is probably latin-1 or Windows-1252); save it as UTF-8")


__all__ = ["MAX_NESTING", "MAX_NODES", "MAX_SPEC_BYTES", "load_spec_document", "read_spec_file"]
