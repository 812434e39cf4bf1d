"""Reading a manifest file as data: a safe YAML loader with bounds, so no manifest can run code or exhaust the machine.

Snakemake reads ``--configfile`` through yte, which evaluates Python in a YAML file that asks for it
(``__use_yte__: true``). skycut reads manifests here instead (``skycut validate``, ``skycut plan``, ``skycut run``):

* plain YAML only (:class:`yaml.SafeLoader`: no tags that build Python objects, nothing evaluated);
* a file over :data:`MAX_MANIFEST_BYTES` is refused before it is parsed;
* aliases (``*name``) may be used, but the document they expand to may hold at most :data:`MAX_NODES` nodes: a
  "billion laughs" alias bomb of a few hundred bytes is refused at once instead of expanding in memory;
* a mapping with the same key twice (a second ``targets:`` silently replacing the first) is an error naming the
  key and both lines;
* an empty file (or an empty mapping ``{}``) is an error, not an empty manifest.

Both bounds can be raised with the environment variables ``SKYCUT_MAX_MANIFEST_BYTES`` and
``SKYCUT_MAX_MANIFEST_NODES`` for a survey whose manifest is really that large.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ..exceptions import ManifestError

MAX_MANIFEST_BYTES = 16 * 2**20
MAX_NODES = 2_000_000


def _limit(env: str, default: int) -> int:
    text = os.environ.get(env)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ManifestError([("<environment>", f"{env} must be a whole number", text)]) from None
    if value <= 0:
        raise ManifestError([("<environment>", f"{env} must be positive", text)])
    return value


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: let SafeLoader report it
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first on line {first}, again on line {line})",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """Count the nodes ``root`` expands to with every alias followed; stop counting past ``limit``.

    Aliases make the composed graph a DAG whose shared nodes are counted once per reference, which is what
    the constructed data would hold once something (validation, JSON) walks it. Memoised per node, so the
    count costs time linear in the size of the graph, not of its expansion.
    """
    memo: dict[int, int] = {}
    order: list[yaml.Node] = []
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    visiting: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            visiting.discard(key)
            order.append(node)
            total = 1
            for child in _children(node):
                total += memo[id(child)]
                if total > limit:
                    total = limit + 1
                    break
            memo[key] = total
            continue
        if key in memo or key in visiting:
            continue
        visiting.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in memo)
    return memo[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def parse_manifest_text(text: str, source: str = "<manifest>") -> dict[str, Any]:
    """Parse manifest YAML ``text`` safely (see the module docstring) into a mapping.

    Raises
    ------
    ManifestError
        Naming ``source`` and what is wrong: too large, not YAML, an alias expansion past the bound, a duplicate
        key, empty, or not a mapping of sections.
    """
    max_bytes = _limit("SKYCUT_MAX_MANIFEST_BYTES", MAX_MANIFEST_BYTES)
    max_nodes = _limit("SKYCUT_MAX_MANIFEST_NODES", MAX_NODES)
    if len(text.encode("utf-8", errors="replace")) > max_bytes:
        raise ManifestError(
            [
                (
                    "<file>",
                    f"the manifest is larger than {max_bytes} bytes "
                    "(SKYCUT_MAX_MANIFEST_BYTES raises the bound)",
                    source,
                )
            ]
        )
    loader = _UniqueKeyLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise ManifestError([("<file>", "the manifest is empty", source)])
        nodes = _expanded_size(root, max_nodes)
        if nodes > max_nodes:
            raise ManifestError(
                [
                    (
                        "<file>",
                        f"the manifest's aliases expand to more than {max_nodes} values "
                        "(an alias bomb?); SKYCUT_MAX_MANIFEST_NODES raises the bound",
                        source,
                    )
                ]
            )
        data = loader.construct_document(root)
    except yaml.YAMLError as exc:
        raise ManifestError([("<file>", f"not valid YAML: {exc}", source)]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ManifestError([("<manifest>", "the manifest must be a mapping of sections", data)])
    if not data:
        raise ManifestError([("<file>", "the manifest is empty (no sections)", source)])
    return data


def read_manifest_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read and safely parse a manifest file (see :func:`parse_manifest_text`).

    The size bound is checked on the file's size before anything is read.
    """
    path = Path(path)
    max_bytes = _limit("SKYCUT_MAX_MANIFEST_BYTES", MAX_MANIFEST_BYTES)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ManifestError(
                [
                    (
                        "<file>",
                        f"the manifest is larger than {max_bytes} bytes "
                        "(SKYCUT_MAX_MANIFEST_BYTES raises the bound)",
                        str(path),
                    )
                ]
            )
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError([("<file>", f"cannot read manifest: {exc.strerror}", str(path))]) from None
    except UnicodeDecodeError:
        raise ManifestError([("<file>", "the manifest is not UTF-8 text", str(path))]) from None
    return parse_manifest_text(text, str(path))
