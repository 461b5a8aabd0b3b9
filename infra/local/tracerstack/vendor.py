"""``make vendor``: put into each app's ``vendor/`` the ``covidtracer`` modules its ``app.py``
imports — the core and the domains it uses, nothing else — plus its pinned third-party
packages.

Which modules an app needs is read from the source, not listed by hand: every ``import``
reachable from ``app.py`` (those inside functions too, since services import heavy adapters on
first use; not those under ``if TYPE_CHECKING:``, which never run). A package reached brings
its data files (``*.sql`` migrations, ``*.json`` documents, ``*.pem`` public roots), not its
unreached modules. Dev-only code (local drivers, test oracles, fakes) lives outside
``covidtracer``, so it cannot ship.
"""

from __future__ import annotations

import argparse
import ast
import compileall
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from tracerstack import REPO_ROOT, SERVICES

SOURCE = REPO_ROOT / "shared" / "src"
PACKAGE = "covidtracer"
DATA_SUFFIXES = (".sql", ".json", ".pem")  # migrations, documents, attestation roots


def _module_file(name: str, source: Path) -> Path | None:
    path = source.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterable[str]:
    """Every dotted name an import statement in ``tree`` may load, at run time."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            yield origin
            # ``from covidtracer.enfkeys import service`` loads a submodule, not only a name.
            yield from (f"{origin}.{alias.name}" for alias in node.names)
        stack.extend(ast.iter_child_nodes(node))


def closure(entry: Path, source: Path = SOURCE) -> set[str]:
    """The ``covidtracer`` modules (dotted names, packages included) ``entry`` reaches, with
    the app's own ``chalicelib/`` (which Chalice ships beside ``app.py``)."""
    seen: set[str] = set()
    todo: list[tuple[Path, str, bool]] = [(entry, "app", False)]
    for own in sorted((entry.parent / "chalicelib").rglob("*.py")):
        dotted = ".".join(own.relative_to(entry.parent).with_suffix("").parts)
        is_package = own.name == "__init__.py"
        todo.append((own, dotted.removesuffix(".__init__"), is_package))
    while todo:
        path, module, is_package = todo.pop()
        tree = ast.parse(path.read_text(), filename=str(path))
        for name in _imported_names(tree, module, is_package):
            if name != PACKAGE and not name.startswith(PACKAGE + "."):
                continue
            parts = name.split(".")
            # Importing a.b.c runs a/__init__, a/b/__init__ and a/b/c.
            for end in range(1, len(parts) + 1):
                prefix = ".".join(parts[:end])
                found = _module_file(prefix, source)
                if found is not None and prefix not in seen:
                    seen.add(prefix)
                    todo.append((found, prefix, found.name == "__init__.py"))
    return seen


def files_for(modules: Iterable[str], source: Path = SOURCE) -> list[Path]:
    """Source files (relative to ``source``) of ``modules``, with each package's data files."""
    files: set[Path] = set()
    for module in modules:
        found = _module_file(module, source)
        if found is None:
            continue
        files.add(found.relative_to(source))
        if found.name == "__init__.py":
            for data in found.parent.rglob("*"):
                if data.suffix in DATA_SUFFIXES and _owning_package(data, source) == found.parent:
                    files.add(data.relative_to(source))
    return sorted(files)


def _owning_package(path: Path, source: Path) -> Path:
    """The nearest folder above ``path`` that is a Python package."""
    folder = path.parent
    while folder != source and not (folder / "__init__.py").is_file():
        folder = folder.parent
    return folder


def vendor(service: str, python: str = sys.executable) -> list[Path]:
    """Rebuild ``services/<service>/vendor``; returns the ``covidtracer`` files put there."""
    app_dir = SERVICES / service
    target = app_dir / "vendor"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    files = files_for(closure(app_dir / "app.py"))
    for relative in files:
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SOURCE / relative, destination)
    # Bytecode by this (the runtime's) Python; packaging makes it valid in the zip.
    compileall.compile_dir(target / PACKAGE, quiet=1)
    requirements = app_dir / "vendor-requirements.txt"
    if requirements.is_file():
        # --no-deps: their only dependency (botocore) comes with the Lambda runtime.
        subprocess.run(
            [
                python,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--target",
                str(target),
                "-r",
                str(requirements),
            ],
            check=True,
        )
    return files


# What the python3.13 Lambda runtime has on its path besides the function's code.
RUNTIME_PACKAGES = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "dateutil",
    "six",
    "urllib3",
    "snapshot_restore_py",  # SnapStart's runtime hooks (covidtracer.snapstart)
)


def runtime_path(into: Path) -> Path:
    """A folder holding only what the Lambda runtime provides, linked from this venv: with
    it and an unpacked package on the path, an import sees what it would see in Lambda."""
    import importlib.util

    runtime = into / "runtime"
    runtime.mkdir()
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (runtime / source.name).symlink_to(source)
    return runtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    apps = sorted(path.parent.name for path in SERVICES.glob("*/app.py"))
    parser.add_argument("services", nargs="*", help=f"default: all of {', '.join(apps)}")
    args = parser.parse_args()
    if unknown := set(args.services) - set(apps):
        parser.error(f"no such service: {', '.join(sorted(unknown))}")
    for service in args.services or apps:
        files = vendor(service)
        modules = sum(1 for f in files if f.suffix == ".py")
        print(f"{service:<8} {modules} covidtracer modules, {len(files) - modules} data files")


if __name__ == "__main__":
    main()
