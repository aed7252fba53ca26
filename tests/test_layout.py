"""The package's layout, read from its source: three floors with imports only downward, no
import cycle, no source file over 400 lines, and a light ``import codec``.

Floors, top to bottom (README, "Layout"):

3. applications: the command line, its commands, the exit-status table, demo, info, and the
   command-line faces of the tools (a module named ``cli``);
2. tools: corpus tokenization, the benchmark, training;
1. I/O: files and folders (audio files, inputs and manifests, token files and streams, the
   pipeline);
0. library: everything else (the model, the tokenizer API, streaming, tokens, kernels, errors,
   other codecs' weights).

A module may import its own floor and the floors below.  Every import counts, wherever it is
written (inside a function too); ``if TYPE_CHECKING:`` imports count for the floors but not for
cycles, since they never run.  Importing ``a.b.c`` also runs the packages ``a`` and ``a.b``, so
those count as imported too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import codec

ROOT = Path(codec.__file__).parent
REPO = ROOT.parent
FLOORS = ("library", "I/O", "tools", "applications")
APPLICATIONS = {
    "codec.__main__",
    "codec.cli",
    "codec.commands",
    "codec.model_options",
    "codec.exitcodes",
    "codec.demo",
    "codec.info",
}
TOOLS = ("codec.tokenize", "codec.data", "codec.bench", "codec.train")  # codec.data: deprecated names
IO = (
    "codec.pipeline",
    "codec.tokenfile",
    "codec.fileformat",  # deprecated names of codec.tokenfile
    "codec.tokenstream",
    "codec.bitpack",
    "codec.formats",
    "codec.manifest",
)


def floor(module: str) -> int:
    """0 library, 1 I/O, 2 tools, 3 applications."""
    if module in APPLICATIONS or module.rpartition(".")[2] == "cli":
        return 3
    if any(module == p or module.startswith(p + ".") for p in TOOLS):
        return 2
    if any(module == p or module.startswith(p + ".") for p in IO):
        return 1
    return 0


def _modules() -> dict[str, Path]:
    """Every module of the package (the repository's kernels/ and configs/ install inside it)."""
    found = {}
    for base, package in (
        (ROOT, "codec"),
        (REPO / "kernels", "codec.kernels"),
        (REPO / "configs", "codec.configs"),
    ):
        for path in base.rglob("*.py"):
            parts = path.relative_to(base).with_suffix("").parts
            found[".".join((package, *parts)).removesuffix(".__init__")] = path
    return found


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(test)


def _imports(path: Path, name: str, modules: dict[str, Path]) -> tuple[set[str], set[str]]:
    """(what ``name`` imports when it runs, what it imports for type checking only)."""
    run, typing = set(), set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def visit(node: ast.AST, into: set[str]) -> None:
        for child in ast.iter_child_nodes(node):
            target = typing if _type_checking(child) else into
            if isinstance(child, ast.Import):
                target.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*up, base] if base else up)
                target.add(base)
                target.update(f"{base}.{a.name}" for a in child.names if f"{base}.{a.name}" in modules)
            visit(child, target)

    visit(ast.parse(path.read_text()), run)
    return run, typing


def _with_packages(name: str, names: set[str], modules: dict[str, Path]) -> set[str]:
    """``names`` and the packages above them that ``name`` is not inside (importing ``a.b.c``
    from outside ``a.b`` runs ``a.b/__init__.py`` first; from inside, it already runs)."""
    out = set()
    for imported in names:
        parts = imported.split(".")
        out |= {".".join(parts[:i]) for i in range(1, len(parts))} | {imported}
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    return {n for n in out if n in modules and n != name and (n not in own or n in names)}


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module -> the package's modules it imports when it runs, module -> all it imports)."""
    modules = _modules()
    run_graph, all_graph = {}, {}
    for name, path in modules.items():
        run, typing = _imports(path, name, modules)
        run_graph[name] = _with_packages(name, run, modules)
        all_graph[name] = _with_packages(name, run | typing, modules)
    return run_graph, all_graph


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a module on a higher floor than the importer's (the package ``codec``
    itself, whose exports load on first use, is not a module of any floor)."""
    return sorted(
        f"{name} ({FLOORS[floor(name)]}) imports {dep} ({FLOORS[floor(dep)]})"
        for name, deps in graph.items()
        for dep in deps
        if "codec" not in (name, dep) and floor(dep) > floor(name)
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected group of modules (an empty list: none)."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                found.append([*path[path.index(dep) :], dep] if dep in path else [*path, node, dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_imports_only_run_downward_through_the_floors() -> None:
    assert upward_imports(import_graph()[1]) == []


def test_a_library_module_importing_an_application_module_is_caught() -> None:
    """The check itself: the real graph plus one planted import from the library (the tensor
    API) of the command line's exit-status table."""
    graph = import_graph()[1]
    graph["codec.api"] = graph["codec.api"] | {"codec.exitcodes"}
    assert upward_imports(graph) == ["codec.api (library) imports codec.exitcodes (applications)"]


def test_there_is_no_import_cycle() -> None:
    assert cycles(import_graph()[0]) == []


def test_a_planted_cycle_is_caught() -> None:
    graph = import_graph()[0]
    graph["codec.config"] = graph["codec.config"] | {"codec.api"}
    assert cycles(graph)


def test_no_source_file_is_over_400_lines() -> None:
    long = [
        (str(p.relative_to(REPO)), n)
        for folder in ("codec", "kernels", "tests", "benchmarks")
        for p in (REPO / folder).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    ]
    assert long == []


def _loaded_after(code: str, watch: tuple[str, ...]) -> list[str]:
    probe = f"import sys; {code}; print(','.join(m for m in {watch!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


HEAVY = (
    "lightning",
    "pytorch_lightning",
    "pyarrow",
    "transformers",
    "soundfile",
    "auraloss",
    "pesq",
    "pystoi",
)


def test_import_codec_stays_light() -> None:
    assert _loaded_after("import codec", ("torch", *HEAVY)) == []


def test_the_library_imports_no_file_layer_tool_or_training_package() -> None:
    code = "import codec, codec.api, codec.streaming, codec.checkpoint, codec.tokens, codec.kernels.rvq"
    watch = (*HEAVY, "codec.train", "codec.tokenize", "codec.data", "codec.bench", "codec.pipeline")
    assert _loaded_after(code, watch) == []


def test_a_moved_name_still_imports_and_warns() -> None:
    from codec.streaming import EXACT_FRAMES

    with pytest.warns(DeprecationWarning, match="codec.streaming.EXACT_FRAMES"):
        from codec.api import MIN_FRAMES
    assert MIN_FRAMES == EXACT_FRAMES
    with pytest.raises(ImportError):
        from codec.api import NO_SUCH_NAME  # noqa: F401


@pytest.mark.parametrize(
    ("old", "name", "new"),
    [
        ("codec.fileformat", "write_codes", "codec.tokenfile.file"),
        ("codec.fileformat", "StreamHeader", "codec.tokenfile.header"),
        ("codec.tokenstream", "TokenStreamReader", "codec.tokenfile.stream"),
        ("codec.bitpack", "pack_codes", "codec.tokenfile.bitpack"),
        ("codec.data", "TokenDataset", "codec.tokenize"),
    ],
)
def test_a_moved_modules_names_still_import_and_warn(old: str, name: str, new: str) -> None:
    import importlib

    with pytest.warns(DeprecationWarning, match=f"{new}.{name}"):
        value = getattr(importlib.import_module(old), name)
    assert value is getattr(importlib.import_module(new), name)


def test_every_package_is_in_the_wheel() -> None:
    """setuptools installs only the packages pyproject.toml lists: a new folder must be listed."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(("codec", *p.parent.relative_to(ROOT).parts)) for p in ROOT.rglob("__init__.py")}
    assert found - listed == set()
