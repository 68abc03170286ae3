"""What the README's main job needs installed: every module and executable its steps name, found by reading the code.

The main job is ``voicecart data prepare`` → ``voicecart pipeline run --local`` (the KFP components
of ``components/`` run as subprocesses of this interpreter) → ``voicecart serve``. Their code, and
the voicecart modules it reaches, are parsed (never imported) and every import is collected —
imports inside functions too, since steps import lazily — except those guarded by ``except
ImportError`` (optional by construction) and ``TYPE_CHECKING`` blocks. Executables are the
string arguments of ``shutil.which(...)``, names next to ``sys.executable`` and
``[sys.executable, "-m", <module>]`` commands. :func:`missing` then looks each one up in the
running interpreter's environment: ``voicecart pipeline check`` (demo.sh runs it after setup) and
the fresh-venv test of ``scripts/setup.sh``.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = "voicecart"
COMMAND_MODULES = ("voicecart.cli.data", "voicecart.cli.pipeline", "voicecart.cli.serve")
"""The CLI commands the main job types (their nested imports count; other commands' do not)."""
LOCAL_PACKAGES = ("components", "pipelines")
"""Packages of the checkout outside ``src/`` that the pipeline imports (the DAG and its steps)."""


@dataclass
class Needs:
    """Modules (dotted names outside voicecart) and executables, each with the first file that names it."""

    modules: dict[str, str] = field(default_factory=dict)
    executables: dict[str, str] = field(default_factory=dict)


def _package_root() -> Path:
    return Path(__file__).resolve().parents[1]


def _module_file(name: str, src: Path) -> Path | None:
    """``voicecart.a.b`` → its source file under ``src`` (the folder holding the voicecart package)."""
    base = src.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Inside ``try: … except ImportError`` or ``if TYPE_CHECKING:``."""
    child, parent = node, parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.Try) and child in parent.body:
            names = {ast.unparse(h.type) for h in parent.handlers if h.type is not None}
            if names & {"ImportError", "ModuleNotFoundError", "(ImportError, ModuleNotFoundError)"}:
                return True
        if isinstance(parent, ast.If) and "TYPE_CHECKING" in ast.unparse(parent.test):
            return True
        child, parent = parent, parents.get(parent)
    return False


def _names_sys_executable(node: ast.AST) -> bool:
    return "sys.executable" in ast.unparse(node)


def scan(path: Path, module: str | None, *, top_level_only: bool = False) -> tuple[set[str], set[str], set[str]]:
    """(imported modules, executables, ``-m`` modules) named by one source file.

    ``module`` is the file's dotted name (resolves relative imports); ``top_level_only`` keeps the
    imports that run when the module is imported, not those inside its functions.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    package = (module or "").rsplit(".", 1)[0] if path.name != "__init__.py" else (module or "")
    imports: set[str] = set()
    executables: set[str] = set()
    run_modules: set[str] = set()
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)) and _guarded(node, parents):
            continue
        if isinstance(node, ast.Import):
            imports.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            imports.add(base)
            imports.update(f"{base}.{alias.name}" for alias in node.names)  # a submodule, when it is one
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                if node.func.attr == "which" or (node.func.attr == "with_name" and _names_sys_executable(node.func)):
                    executables.add(arg.value)
                elif node.func.attr == "import_module":
                    imports.add(arg.value)
            elif node.func.attr == "import_module" and isinstance(arg, ast.JoinedStr) and arg.values:
                head = arg.values[0]
                if isinstance(head, ast.Constant) and str(head.value).endswith("."):
                    imports.add(str(head.value) + "*")  # any module of that package
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and _names_sys_executable(node.left):
            if isinstance(node.right, ast.Constant) and isinstance(node.right.value, str):
                executables.add(node.right.value)
        elif isinstance(node, ast.List) and any(_names_sys_executable(e) for e in node.elts):
            values = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
            for flag, name in zip(values, values[1:]):
                if flag == "-m" and isinstance(name, str):
                    run_modules.add(name)
    return imports, executables, run_modules


def main_job_needs(repo: Path) -> Needs:
    """Everything the main job's code names: components/, the main job's commands, the modules they reach."""
    src = _package_root().parent
    needs = Needs()
    queue: list[tuple[Path, str | None, bool]] = [(p, None, False) for p in sorted((repo / "components").glob("*.py"))]
    queue += [(_module_file(name, src), name, False) for name in COMMAND_MODULES]
    # the `voicecart` executable imports every command module (their top-level imports run)
    cli = _package_root() / "cli"
    queue += [(p, f"{PACKAGE}.cli.{p.stem}", True) for p in sorted(cli.glob("*.py")) if p.stem != "__init__"]
    queue.append((cli / "__init__.py", f"{PACKAGE}.cli", False))
    seen: set[tuple[Path, bool]] = set()
    while queue:
        path, module, top_only = queue.pop()
        if path is None or (path, top_only) in seen:
            continue
        seen.add((path, top_only))
        imports, executables, run_modules = scan(path, module, top_level_only=top_only)
        where = str(path.relative_to(repo) if path.is_relative_to(repo) else path)
        for name in sorted(imports):
            head = name.split(".")[0]
            if name.endswith(".*") and head == PACKAGE:
                folder = _module_file(name[:-2], src)
                queue += [(p, f"{name[:-2]}.{p.stem}", False) for p in sorted(folder.parent.glob("*.py"))
                          if folder is not None and p.stem != "__init__"]
            elif head in LOCAL_PACKAGES:
                found = _module_file(name, repo)
                queue.append((found or _module_file(head, repo), name if found else head, False))
            elif head == PACKAGE:
                # the package and every parent package run their __init__ on import
                parts = name.split(".")
                for i in range(1, len(parts) + 1):
                    found = _module_file(".".join(parts[:i]), src)
                    if found is not None:
                        queue.append((found, ".".join(parts[:i]), False))
            elif head and head != "__future__":
                needs.modules.setdefault(name, where)
        for name in sorted(run_modules):
            needs.modules.setdefault(name, where)
        for name in sorted(executables):
            needs.executables.setdefault(name, where)
    return needs


def _submodule(folders: list[str], part: str) -> tuple[Path | None, list[str] | None]:
    """``part`` in a package's folders, without importing anything: (its source file, its folders if a package)."""
    for folder in map(Path, folders):
        if (folder / part).is_dir():
            init = folder / part / "__init__.py"
            return (init if init.is_file() else None), [str(folder / part)]
        for found in sorted(folder.glob(f"{part}.*")):
            if found.suffix in (".py", ".so", ".pyd") or ".cpython-" in found.name:
                return found, None
    return None, None


def _resolves(name: str) -> bool:
    """A dotted name is importable here, or an attribute its package defines; nothing is imported.

    ``from pkg import x`` names ``pkg.x``: a submodule (looked up in the package's folders, which
    also finds modules other distributions add to it, like ``kfp.kubernetes``) or a name that
    the package's ``__init__`` defines.
    """
    head, *rest = name.split(".")
    try:
        spec = importlib.util.find_spec(head)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    source = Path(spec.origin) if spec.origin not in (None, "built-in", "frozen", "namespace") else None
    folders = list(spec.submodule_search_locations or [])
    for part in rest:
        if not folders:
            return True  # a plain module: the rest are its attributes
        found, inner = _submodule(folders, part)
        if found is None and inner is None:
            text = source.read_text(errors="replace") if source is not None and source.suffix == ".py" else ""
            return re.search(rf"\b{re.escape(part)}\b", text) is not None
        source, folders = found, inner or []
    return True


def executable_path(name: str, *, venv_only: bool = True) -> Path | None:
    """``name`` next to this interpreter (the venv's bin), else on PATH unless ``venv_only``."""
    local = Path(sys.executable).with_name(name)
    if local.exists():
        return local
    found = None if venv_only else shutil.which(name)
    return Path(found) if found else None


def missing(needs: Needs, *, venv_only: bool = True) -> list[str]:
    """One sentence per module or executable that does not resolve in this environment."""
    out = [f"module {name} (named in {where}) is not importable" for name, where in sorted(needs.modules.items())
           if not _resolves(name)]
    for name, where in sorted(needs.executables.items()):
        if executable_path(name, venv_only=venv_only) is None:
            out.append(f"executable {name} (named in {where}) is not in {Path(sys.executable).parent}"
                       + ("" if venv_only else " nor on PATH"))
    return out
