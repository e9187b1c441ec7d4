"""The project's modules import each other without cycles, lazy in-function imports
included (the layering contracts themselves are checked by `make lint`)."""

import grimp

PROJECT_PACKAGES = ("catalog", "shop", "recommender", "config", "quality")


def import_cycles(graph):
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    index, low, on_stack, stack, groups = {}, {}, set(), [], []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in graph.modules:
                continue
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return groups


def project_graph():
    graph = grimp.build_graph(*PROJECT_PACKAGES, cache_dir=None)
    # A package's __init__ re-exporting its own modules is not a dependency between modules.
    for module in list(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.startswith(module + ".") or module.startswith(imported + "."):
                graph.remove_import(importer=module, imported=imported)
    return graph


def test_import_cycles_are_found():
    graph = grimp.ImportGraph()
    for module in ("a", "a.b", "a.c", "a.d"):
        graph.add_module(module)
    graph.add_import(importer="a.b", imported="a.c")
    graph.add_import(importer="a.c", imported="a.b")
    graph.add_import(importer="a.c", imported="a.d")
    assert import_cycles(graph) == [["a.b", "a.c"]]


def test_no_two_modules_of_the_project_import_each_other():
    assert import_cycles(project_graph()) == []
