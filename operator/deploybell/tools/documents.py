"""Multi-document YAML files as Kubernetes objects, each remembering the lines it was written on."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from deploybell.api.constants import GROUP

OUR_KINDS = ("DeployJob", "Notification")
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass(frozen=True)
class Finding:
    """One line of `deploybell validate` output, compiler style: `file:line: error: message`."""

    severity: str  # error | warning
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.severity}: {self.message}"


@dataclass(frozen=True)
class Document:
    """One object of a file: its constructed body and the YAML node it came from."""

    path: str
    node: yaml.Node
    body: Any

    @property
    def line(self) -> int:
        return self.node.start_mark.line + 1

    def _get(self, key: str) -> Any:
        return self.body.get(key) if isinstance(self.body, Mapping) else None

    @property
    def kind(self) -> str:
        return str(self._get("kind") or "")

    @property
    def api_version(self) -> str:
        return str(self._get("apiVersion") or "")

    @property
    def metadata(self) -> Mapping[str, Any]:
        meta = self._get("metadata")
        return meta if isinstance(meta, Mapping) else {}

    @property
    def name(self) -> str:
        name = self.metadata.get("name")
        return name if isinstance(name, str) else ""

    @property
    def namespace(self) -> str:
        namespace = self.metadata.get("namespace")
        return namespace if isinstance(namespace, str) else ""

    @property
    def ours(self) -> bool:
        """A deploybell object: its apiVersion is in our group (whatever its kind or version)."""
        return self.api_version.partition("/")[0] == GROUP

    @property
    def title(self) -> str:
        """`DeployJob team-a/web`: how findings name the object."""
        name = self.name or "(unnamed)"
        return (
            f"{self.kind or 'object'} {self.namespace}/{name}"
            if self.namespace and self.name
            else f"{self.kind or 'object'} {name}"
        )

    def node_at(self, field: str) -> yaml.Node | None:
        """The node of a field path such as `spec.recipients[2]`, None when it is not written."""
        node: yaml.Node | None = self.node
        for key, index in _STEP.findall(field):
            node = _child(node, key if key else int(index))
            if node is None:
                return None
        return node

    def line_of(self, field: str) -> int:
        """The line of a field, or of its nearest written parent (e.g. for a missing field)."""
        node: yaml.Node = self.node
        line = self.line
        for key, index in _STEP.findall(field):
            step = key if key else int(index)
            if isinstance(node, yaml.MappingNode):
                pair = _pair(node, step)
                if pair is None:
                    break
                # A mapping entry's line is that of its key: `field:` is where a reader looks.
                line, node = pair[0].start_mark.line + 1, pair[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
                if not 0 <= step < len(node.value):
                    break
                node = node.value[step]
                line = node.start_mark.line + 1
            else:
                break
        return line


def _pair(node: yaml.MappingNode, key: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    for key_node, value_node in reversed(node.value):  # the last of duplicate keys wins
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(key):
            return key_node, value_node
    return None


def _child(node: yaml.Node | None, step: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        pair = _pair(node, step)
        return pair[1] if pair else None
    if isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
        child: yaml.Node = node.value[step]
        return child
    return None


def load(path: str, text: str) -> tuple[list[Document], list[Finding]]:
    """The objects of one file (items of a `kind: List` each count), and why others could not load.

    Documents before a YAML syntax error are kept; the error names its line.
    """
    documents: list[Document] = []
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            body = loader.construct_document(node) if node is not None else None
            if node is not None and body is not None:
                documents.extend(_objects(Document(path, node, body)))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        problem = e.problem or e.context or "cannot parse"
        if e.context and e.problem and e.context_mark:
            problem += f" ({e.context} at line {e.context_mark.line + 1})"
        return documents, [Finding("error", path, line, f"invalid YAML: {problem}")]
    except yaml.YAMLError as e:
        return documents, [Finding("error", path, 1, f"invalid YAML: {e}")]
    finally:
        loader.dispose()
    return documents, []


def _objects(document: Document) -> Iterator[Document]:
    """The document, or the items of a List (what `kubectl get -o yaml` writes)."""
    items = document.node_at("items")
    if document.kind == "List" and isinstance(items, yaml.SequenceNode):
        for i, item_node in enumerate(items.value):
            if item_node is None:
                continue
            yield from _objects(Document(document.path, item_node, document.body["items"][i]))
        return
    yield document


def duplicate_keys(document: Document) -> Iterator[tuple[str, int, int]]:
    """(field, line, first line) for every key written twice in one mapping (YAML keeps the last;
    the API server's strict decoding refuses the object)."""
    yield from _duplicates(document.node, "")


def _duplicates(node: yaml.Node, path: str) -> Iterator[tuple[str, int, int]]:
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            line = key_node.start_mark.line + 1
            field = f"{path}.{key}" if path else key
            if key in first:
                yield field, line, first[key]
            else:
                first[key] = line
            yield from _duplicates(value_node, field)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicates(item, f"{path}[{i}]")
