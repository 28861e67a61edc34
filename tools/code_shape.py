"""The shape of the package: module sizes, long functions, import cycles, function-level imports.

    python tools/code_shape.py            # a report
    python tools/code_shape.py --check    # exit 1 when a limit in ARCHITECTURE.md is broken

Imports are read from the source (``ast``), module level and inside functions alike, so a
cycle hidden behind a function-level import counts. Modules loaded by name through
``importlib`` (the registry's lazy tables) are not imports.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "i2i"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
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


def scan(paths: list[Path]) -> dict:
    modules = {module_name(p): p for p in paths}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    local_imports: list[tuple[str, int, str]] = []
    long_functions: list[tuple[str, str, int]] = []
    for mod, path in modules.items():
        tree = ast.parse(path.read_text())
        is_pkg = path.name == "__init__.py"

        def visit(node: ast.AST, in_function: bool, mod: str = mod, is_pkg: bool = is_pkg) -> None:
            for child in ast.iter_child_nodes(node):
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
    args = p.parse_args()
    paths = sorted((ROOT / PACKAGE).rglob("*.py"))
    r = scan(paths)
    cycles = strongly_connected(r["edges"])
    big = sorted(((n, m) for m, n in r["sizes"].items() if n > MAX_MODULE_LINES), reverse=True)
    print(f"{len(paths)} modules, {sum(r['sizes'].values())} lines; largest: "
          + ", ".join(f"{m} {n}" for m, n in sorted(((m, n) for m, n in r["sizes"].items()), key=lambda x: -x[1])[:5]))
    print(f"modules over {MAX_MODULE_LINES} lines: {len(big)}" + "".join(f"\n  {m}: {n}" for n, m in big))
    print(f"functions over {MAX_FUNCTION_LINES} lines: {len(r['long_functions'])}"
          + "".join(f"\n  {m}.{f}: {n}" for m, f, n in r["long_functions"]))
    print(f"import cycles (strongly connected components): {len(cycles)}" + "".join(f"\n  {' <-> '.join(c)}" for c in cycles))
    print(f"function-level imports of {PACKAGE} modules: {len(r['local_imports'])}"
          + "".join(f"\n  {m}:{line} -> {t}" for m, line, t in r["local_imports"]))
    broken = bool(big or r["long_functions"] or cycles or r["local_imports"])
    return 1 if args.check and broken else 0


if __name__ == "__main__":
    sys.exit(main())
