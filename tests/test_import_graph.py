"""The house keeps its shape: no import cycle anywhere in pawmanity/ or blueprints/ (imports inside functions count
too), no plugin importing another plugin, and no domain importing a domain above it.

Read from the source with `ast`, so a lazy import hidden in a function is seen as well as a top-level one.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pawmanity", "blueprints")

# pawmanity's packages from the bottom up: each may import those before it, never one after it. The top-level
# modules (the factory, cli, demo, metadata, worker) compose the domains and may import any of them.
LAYERS = ("core", "audit", "identity", "notifications", "scheduling", "care", "appointments", "conversations",
          "media", "triage", "pharmacy", "vitals", "fhir", "webhooks", "privacy", "sync")


def project_modules(root=ROOT):
    modules = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def imports_of(name, path, modules):
    """The project modules that `name` imports, anywhere in its body."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from package import module` names a module; `from module import name` names the module.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root=ROOT):
    modules = project_modules(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan), each as a sorted list."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def plugin_of(module):
    parts = module.split(".")
    return parts[1] if parts[0] == "blueprints" and len(parts) > 1 else None


def layer_of(module):
    parts = module.split(".")
    if parts[0] == "pawmanity" and len(parts) > 1 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return None


def plugin_crossings(graph):
    return sorted((source, target) for source, targets in graph.items() for target in targets
                  if plugin_of(source) and plugin_of(target) and plugin_of(source) != plugin_of(target))


def upward_imports(graph):
    """Imports from a domain into one above it, and from any of pawmanity into the plugins."""
    found = []
    for source, targets in graph.items():
        for target in targets:
            below, above = layer_of(source), layer_of(target)
            if below is not None and above is not None and above > below:
                found.append((source, target))
            elif source.startswith("pawmanity") and target.startswith("blueprints"):
                found.append((source, target))
            elif below is not None and target.startswith("pawmanity") and above is None and target != "pawmanity":
                found.append((source, target))  # a domain reaching up into the factory, cli or demo
    return sorted(found)


def test_there_is_no_import_cycle():
    assert cycles(import_graph()) == []


def test_no_plugin_imports_another_plugin():
    assert plugin_crossings(import_graph()) == []


def test_domains_only_import_downward():
    assert upward_imports(import_graph()) == []


def test_every_domain_is_a_package_of_at_most_fifteen_modules():
    for folder in [ROOT / "pawmanity", *(p for p in (ROOT / "pawmanity").iterdir() if (p / "__init__.py").exists()),
                   *(p for p in (ROOT / "blueprints").iterdir() if p.is_dir())]:
        assert len(list(folder.glob("*.py"))) <= 15, folder
    assert {p.name for p in (ROOT / "pawmanity").iterdir() if (p / "__init__.py").exists()} >= set(LAYERS)


@pytest.fixture
def tree(tmp_path):
    def make(files):
        for relative, text in files.items():
            path = tmp_path / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return import_graph(tmp_path)
    return make


def test_the_check_finds_a_cycle_hidden_in_a_function(tree):
    graph = tree({
        "pawmanity/__init__.py": "", "blueprints/__init__.py": "",
        "pawmanity/care/__init__.py": "",
        "pawmanity/care/patients.py": "from pawmanity.care import records\n",
        "pawmanity/care/records.py": "def f():\n    from pawmanity.care.patients import g\n",
    })
    assert cycles(graph) == [["pawmanity.care.patients", "pawmanity.care.records"]]


def test_the_check_finds_a_plugin_importing_another_and_a_domain_importing_upward(tree):
    graph = tree({
        "pawmanity/__init__.py": "", "blueprints/__init__.py": "",
        "pawmanity/core/__init__.py": "", "pawmanity/core/errors.py": "from pawmanity.care.access import x\n",
        "pawmanity/care/__init__.py": "", "pawmanity/care/access.py": "from . import models\n",
        "pawmanity/care/models.py": "",
        "blueprints/a/__init__.py": "from blueprints.b.routes import blp\n",
        "blueprints/b/__init__.py": "", "blueprints/b/routes.py": "",
    })
    assert plugin_crossings(graph) == [("blueprints.a", "blueprints.b.routes")]
    assert upward_imports(graph) == [("pawmanity.core.errors", "pawmanity.care.access")]
    assert graph["pawmanity.care.access"] == {"pawmanity.care.models"}
