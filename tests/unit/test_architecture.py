"""The package's shape, as DESIGN.md draws it: no import circles, thin commands that no library
imports, kerasrun imports at the top of their files, short modules, a short `train()`.

Read with `ast` from the source: nothing is imported, so a circle that Python happens to
tolerate today (because of import order) is still found.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "kerasrun"
COMMANDS = {f"kerasrun.{name}" for name in ("train", "evaluate", "predict", "visualize")} | {
    "kerasrun.export",
    "kerasrun.runs",
}
# Importing these costs seconds: a kerasrun import inside a function is allowed only when it
# brings one of them in, to keep `train --help` and `--cfg job` fast.
HEAVY = ("tensorflow", "keras", "tensorboard", "scipy", "onnxruntime", "tf2onnx")
MAX_MODULE_LINES = 500
MAX_TRAIN_LINES = 110


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text()) for name, path in MODULES.items()}


def imports(name):
    """`[(imported kerasrun module, node, at top level)]` of module `name`.

    `from kerasrun.training import runtime` imports the package `kerasrun.training` and the
    module `kerasrun.training.runtime`; `from kerasrun.data import DATASETS` the package only.
    """
    is_package = MODULES[name].name == "__init__.py"
    found = []
    top_level = set(map(id, TREES[name].body))
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join(package + ([node.module] if node.module else []))
            # `from kerasrun.data import download` runs `kerasrun/data/__init__.py` first:
            # an edge to the package too, so that a package importing its own submodules,
            # which import it back this way, is a circle.
            targets = [base] + [
                f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES
            ]
        else:
            continue
        for target in targets:
            if target.split(".")[0] == "kerasrun":
                found.append((target, node, id(node) in top_level))
    return found


def graph():
    return {name: {target for target, _, _ in imports(name)} - {name} for name in MODULES}


def cycles(edges):
    """Tarjan's strongly connected components with more than one module."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_cycles_finds_a_circle():
    # The check itself: a circle of three is found, a chain is not.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_circles():
    assert cycles(graph()) == []


def test_no_library_module_imports_a_command():
    offenders = [
        f"{name} imports {target}"
        for name, targets in graph().items()
        for target in targets & COMMANDS
        if name != target
    ]
    assert offenders == []


def heavy(name, seen=None):
    """Whether importing kerasrun module `name` imports one of `HEAVY` at its top level."""
    seen = seen if seen is not None else set()
    if name in seen or name not in MODULES:
        return False
    seen.add(name)
    for node in TREES[name].body:
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] in HEAVY for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in HEAVY:
            return True
    return any(heavy(target, seen) for target, _, top in imports(name) if top)


def test_kerasrun_imports_sit_at_the_top_unless_they_are_lazy_for_tensorflow():
    heavy_statements = {
        (name, id(node)) for name in MODULES for target, node, _ in imports(name) if heavy(target)
    }
    inside = [
        f"{MODULES[name].relative_to(PACKAGE.parent)}:{node.lineno} imports {target}"
        for name in MODULES
        for target, node, top in imports(name)
        if not top and (name, id(node)) not in heavy_statements
    ]
    assert inside == []


def test_modules_are_short():
    long = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_train_reads_like_the_book():
    train = next(
        node
        for node in TREES["kerasrun.train"].body
        if isinstance(node, ast.FunctionDef) and node.name == "train"
    )
    assert train.end_lineno - train.lineno + 1 <= MAX_TRAIN_LINES


def test_readmes_map_names_every_subpackage_and_top_level_module():
    readme = (PACKAGE.parents[1] / "README.md").read_text()
    development = readme.split("\n## Development", 1)[1].split("\n## ", 1)[0]
    names = {path.name + "/" for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    names |= {path.name for path in PACKAGE.glob("*.py") if path.name != "__init__.py"}
    assert sorted(name for name in names if name not in development) == []
