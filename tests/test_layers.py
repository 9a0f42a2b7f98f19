"""The layers, drawn from the code: every import (function-level ones too;
not those under `if TYPE_CHECKING:`) goes to the importer's own layer or
one below it, and no files import each other in a circle. The README's
diagram ("Layers") is this list."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Bottom to top. Each layer is one or more sibling groups of module
# prefixes (the longest prefix names a module's group); a group imports
# only itself and the layers below, not its siblings.
LAYERS: list[list[tuple[str, ...]]] = [
    [("brandpy", "brandpy.fsmeta", "brandpy.datadir", "brandpy.pathnames", "brandpy.scratch")],
    [("brandpy.images",)],
    [("brandpy.runtime",)],     # the call, the sandbox, paths, errors, Linux's constants
    [("syscalls",)],            # the table and its handlers
    [("brandpy.supervise",)],   # the supervisors and the Container that drives them
    [("brandpy.network",)],     # namespaces, bridges, addresses, firewall, resolvers
    [("brandpy.engine",), ("brandpy.oci",)],
    [("brandpy.api",)],
    [("brandpy.cli", "brandpy.runopts", "brandpy.__main__")],
    [("brandpy.zygote",)],      # forks the command line's runs
]

def modules() -> dict[str, Path]:
    out = {}
    for top in ("brandpy", "syscalls"):
        for path in (ROOT / top).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
        (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")
                    parts = parts[:len(parts) - child.level + 1]
                    base = ".".join(parts + ([child.module] if child.module else []))
                for alias in child.names:
                    add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def circles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def group_of(name: str) -> tuple[int, int]:
    """(layer, sibling group) of a module: its longest matching prefix."""
    best: tuple[int, int, int] | None = None
    for li, layer in enumerate(LAYERS):
        for gi, group in enumerate(layer):
            for prefix in group:
                if (name == prefix or name.startswith(prefix + ".")) and \
                        (best is None or len(prefix) > best[2]):
                    best = (li, gi, len(prefix))
    assert best is not None, f"{name} is in no layer: add it to LAYERS in {__file__}"
    return best[0], best[1]


def test_no_import_circles():
    found = circles(graph())
    assert not found, "modules import each other in a circle (untie it: a module below " \
        "both, or a callback handed down): " + "; ".join(" <-> ".join(c) for c in found)


def test_each_layer_imports_only_layers_below():
    wrong = []
    for name, deps in sorted(graph().items()):
        layer, group = group_of(name)
        for dep in sorted(deps):
            dep_layer, dep_group = group_of(dep)
            if dep_layer > layer or (dep_layer == layer and dep_group != group):
                wrong.append(f"{name} -> {dep}")
    assert not wrong, "imports against the layer order (LAYERS, bottom to top): " + \
        ", ".join(wrong)


def c_calls() -> dict[str, set[str]]:
    """native/*.c: which file calls a bp_ function another one defines."""
    sources = {p.name: p.read_text() for p in (ROOT / "native").glob("*.c")}
    defined = {name: set(re.findall(r"^[a-z][\w *]*?\b(bp_\w+)\([^;{]*\)\s*\{", text, re.M))
               for name, text in sources.items()}
    return {caller: {callee for callee, names in defined.items() if callee != caller
                     and any(re.search(rf"\b{n}\(", text) for n in names)}
            for caller, text in sources.items()}


def test_no_circles_in_native():
    found = circles(c_calls())
    assert not found, "native/ files call each other in a circle: " + \
        "; ".join(" <-> ".join(c) for c in found)


def test_the_readme_diagram_lists_the_layers():
    readme = (ROOT / "README.md").read_text()
    diagram = readme.split("## How it works", 1)[1].split("```")[1]
    shown = [m for m in re.findall(r"\b((?:brandpy|syscalls)(?:/\w+)?)/?\s", diagram)
             if (ROOT / m).is_dir() and m != "brandpy"]
    want = [group[0].replace(".", "/") for layer in reversed(LAYERS) for group in layer
            if (ROOT / group[0].replace(".", "/")).is_dir() and group[0] != "brandpy"]
    assert shown == want, f"README.md's layer diagram lists {shown}, LAYERS has {want}"
