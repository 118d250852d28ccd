"""No package reaches into another's private modules or names: what one needs from another is public.

A private module or name (``_x``) may be imported only from inside the package
that holds it: ``deskcorder.store._db._tables`` from ``deskcorder.store`` and
below, ``deskcorder._errors`` (and ``events._FIELDS``) from anywhere in ``deskcorder``. So
``from ..store._db._rate_limits import take_token`` in ``collect/`` fails here,
and ``EventStore.take_rate_token`` is the way in. The tests are not walked:
they may look inside what they test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import deskcorder

PACKAGE_ROOT = Path(deskcorder.__file__).parent


def _module_name(path: Path) -> str:
    parts = ["deskcorder", *path.relative_to(PACKAGE_ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """Every (line, dotted target) a module imports: modules, and ``module.name`` for from-imports."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found += [(node.lineno, f"{source}.{alias.name}") for alias in node.names if alias.name != "*"]
    return [(line, target) for line, target in found if target.split(".")[0] == "deskcorder"]


def _reach_in(importer: str, target: str) -> bool:
    parts = target.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            # A private name of a module (``events._FIELDS``) is its package's, like a private module.
            in_module = PACKAGE_ROOT.joinpath(*parts[1:i]).with_suffix(".py").is_file()
            holder = ".".join(parts[:i - 1] if in_module else parts[:i])
            return not (importer == holder or importer.startswith(holder + "."))
    return False


def reach_ins() -> list[str]:
    found = []
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, target in _imported(tree, module, path.name == "__init__.py"):
            if _reach_in(module, target):
                found.append(f"{path.relative_to(PACKAGE_ROOT)}:{line} imports {target}")
    return found


def test_no_module_imports_another_packages_private_names() -> None:
    assert reach_ins() == []


def _store_internals(tree: ast.AST) -> list[tuple[int, str]]:
    """``store._engine``, ``self._store._wrapper``: a private attribute of something named a store."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
            if name.lstrip("_") == "store":
                found.append((node.lineno, ast.unparse(node)))
    return found


def test_no_module_outside_the_store_touches_an_event_stores_internals() -> None:
    # The imports above cannot see an attribute: the collector took take_token(self._store._engine, ...).
    found = []
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        if _module_name(path).startswith("deskcorder.store"):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        found += [f"{path.relative_to(PACKAGE_ROOT)}:{line} uses {text}" for line, text in _store_internals(tree)]
    assert found == []
    assert _store_internals(ast.parse("take_token(self._store._engine, device_id)")) == [(1, "self._store._engine")]


def test_the_check_sees_a_reach_in_and_allows_what_a_package_keeps_inside() -> None:
    assert _reach_in("deskcorder.collect._device_auth", "deskcorder.store._db._rate_limits.take_token")
    assert _reach_in("deskcorder.dataset._build", "deskcorder.privacy._redact.Span")
    assert _reach_in("deskcorder.cli.serve", "deskcorder.store._private")
    assert not _reach_in("deskcorder.store._lifecycle._erasure", "deskcorder.store._db._tables.batches")
    assert not _reach_in("deskcorder.collect._app", "deskcorder.store.EventStore")
    assert not _reach_in("deskcorder.events", "deskcorder._errors.DeskcorderError")
    assert not _reach_in("deskcorder.wire", "deskcorder.events._FIELDS")
    assert _reach_in("deskcorder.collect._portal._views", "deskcorder.dataset._build._compute")
