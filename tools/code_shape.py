"""The shape of the package: the layer order, module sizes, long functions, import cycles,
function-level imports.

    python tools/code_shape.py            # a report
    python tools/code_shape.py --check    # exit 1 when a limit in ARCHITECTURE.md is broken
    python tools/code_shape.py --layers   # the layer table as ARCHITECTURE.md shows it

Imports are read from the source (``ast``), module level and inside functions alike, so a
cycle hidden behind a function-level import counts. A string that names an i2i module
(``"i2i.engine.trainer"``, ``"i2i.pipelines.pix2pix:Pix2Pix"``: what ``importlib`` would load)
counts as an import too, so no lookup by name can hide an edge.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "i2i"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80

# The layers, lowest first: (name, what lives there, its rooms). A room is a top-level module
# or package of i2i ("__init__" is the package root). Imports go down this list or stay within a
# layer, never up (tests/test_architecture.py); within a layer, no cycles.
LAYERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("foundation", "version, option types and ranges, message hints, atomic file writes",
     ("_version", "options", "hints", "files")),
    ("tensors", "pure functions on tensors; processes and devices", ("metrics", "tiling", "dist")),
    ("nets", "pure nn.Modules, their presets, the net tables and builders", ("nets",)),
    ("config", "typed sections with their checks, values, YAML, overrides, migrations", ("config",)),
    ("data", "image I/O, datasets (one file per kind), transforms, caches, degradations; pages and grids",
     ("data", "report")),
    ("objectives", "pretrained weights, GAN and perceptual losses, D augmentation", ("weights", "augment", "losses")),
    ("pipelines", "one file per method: what one iteration computes", ("pipelines",)),
    ("recipes", "the method table; a config read for the method it names", ("recipes",)),
    ("storage", "checkpoints, model folders, loading a generator from any i2i file, imports, downloads",
     ("checkpoint", "loading", "compat", "download")),
    ("conversion", "folders, images and videos converted with a given translate function", ("convert",)),
    ("inference", "runtimes, Translator, Generator, exports, i2i info, conversion on Ray",
     ("runtimes", "translator", "generate", "exporting", "info", "ray_engine")),
    ("evaluation", "metric lists, validators, i2i eval, results pages", ("evaluate",)),
    ("training", "the trainer and its parts", ("engine",)),
    ("service", "the local web app and its HTTP API", ("serve",)),
    ("interface", "the command line and the lazy package root", ("cli", "__main__", "__init__")),
)
MODULE_STRING = re.compile(r"i2i(\.\w+)+(:\w+)?")


def room_of(module: str) -> str:
    """``i2i.data.io`` -> ``data``; ``i2i`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_of(module: str) -> int | None:
    """The index in :data:`LAYERS` of ``module``'s room (None: a room the table does not place)."""
    room = room_of(module)
    return next((i for i, (_, _, rooms) in enumerate(LAYERS) if room in rooms), None)


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    """``a -> b`` for every import from a lower layer to a higher one (and modules no layer holds)."""
    out = [f"{m}: its room {room_of(m)!r} is in no layer" for m in sorted(edges) if layer_of(m) is None]
    for m in sorted(edges):
        for t in sorted(edges[m]):
            lm, lt = layer_of(m), layer_of(t)
            if lm is not None and lt is not None and lt > lm:
                out.append(f"{m} ({LAYERS[lm][0]}) -> {t} ({LAYERS[lt][0]})")
    return out


def layer_table() -> str:
    """The layer table in the form ARCHITECTURE.md shows it (highest first, as one reads a stack)."""
    width = max(len(", ".join(rooms)) for _, _, rooms in LAYERS)
    lines = [f"{i + 1:>2} {name:<11} {', '.join(rooms):<{width}}  {what}" for i,
             (name, what, rooms) in enumerate(LAYERS)]
    return "\n".join(reversed(lines))


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def resolve(node: ast.ImportFrom | ast.Import, module: str, is_package: bool, known: dict[str, Path]) -> list[str]:
    """The i2i modules an import statement names (``from . import x`` names module ``x`` when there is one,
    else an attribute of the package)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == PACKAGE]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != PACKAGE:
        return []
    return [f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names]


def scan(paths: list[Path], root: Path = ROOT) -> dict:
    """Edges (imports and module-naming strings), function-level imports, long functions and sizes of ``paths``."""
    modules = {module_name(p, root): p for p in paths}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    local_imports: list[tuple[str, int, str]] = []
    long_functions: list[tuple[str, str, int]] = []
    for mod, path in modules.items():
        tree = ast.parse(path.read_text())
        is_pkg = path.name == "__init__.py"

        def visit(node: ast.AST, in_function: bool, mod: str = mod, is_pkg: bool = is_pkg) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.Constant) and isinstance(child.value,
                                                                  str) and MODULE_STRING.fullmatch(child.value):
                    target = child.value.split(":")[0]
                    while target not in modules and "." in target:
                        target = target.rsplit(".", 1)[0]
                    if target in modules and target != mod:
                        edges[mod].add(target)
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    targets = [t for t in resolve(child, mod, is_pkg, modules) if t in modules]
                    for t in targets:
                        if t != mod:
                            edges[mod].add(t)
                    if in_function and targets:
                        local_imports.append((mod, child.lineno, ", ".join(sorted(set(targets)))))
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    n = child.end_lineno - child.lineno + 1
                    if n > MAX_FUNCTION_LINES:
                        long_functions.append((mod, child.name, n))
                    visit(child, True)
                else:
                    visit(child, in_function)

        visit(tree, False)
    sizes = {m: len(p.read_text().splitlines()) for m, p in modules.items()}
    return {"edges": edges, "local_imports": local_imports, "long_functions": long_functions, "sizes": sizes}


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; components with more than one module (import cycles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            connect(v)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 when a limit is broken")
    p.add_argument("--layers", action="store_true", help="print the layer table (as ARCHITECTURE.md shows it) and exit")
    args = p.parse_args()
    if args.layers:
        print(layer_table())
        return 0
    paths = sorted((ROOT / PACKAGE).rglob("*.py"))
    r = scan(paths)
    cycles = strongly_connected(r["edges"])
    big = sorted(((n, m) for m, n in r["sizes"].items() if n > MAX_MODULE_LINES), reverse=True)
    print(f"{len(paths)} modules, {sum(r['sizes'].values())} lines; largest: "
          + ", ".join(f"{m} {n}" for m, n in sorted(((m, n) for m, n in r["sizes"].items()), key=lambda x: -x[1])[:5]))
    print(f"modules over {MAX_MODULE_LINES} lines: {len(big)}" + "".join(f"\n  {m}: {n}" for n, m in big))
    print(f"functions over {MAX_FUNCTION_LINES} lines: {len(r['long_functions'])}"
          + "".join(f"\n  {m}.{f}: {n}" for m, f, n in r["long_functions"]))
    upward = upward_imports(r["edges"])
    print(f"imports up the layer order: {len(upward)}" + "".join(f"\n  {u}" for u in upward))
    print("import cycles (strongly connected components): "
          f"{len(cycles)}" + "".join(f"\n  {' <-> '.join(c)}" for c in cycles))
    print(f"function-level imports of {PACKAGE} modules: {len(r['local_imports'])}"
          + "".join(f"\n  {m}:{line} -> {t}" for m, line, t in r["local_imports"]))
    broken = bool(big or r["long_functions"] or cycles or r["local_imports"] or upward)
    return 1 if args.check and broken else 0


if __name__ == "__main__":
    sys.exit(main())
