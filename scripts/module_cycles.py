#!/usr/bin/env python3
"""Fails if silt-core's modules import each other in a cycle.

A module is a top-level file (`sql.rs`) or a module inside a folder
(`lake/keys.rs` is `lake::keys`). An import is any `crate::a::b` path
outside `#[cfg(test)]` code, grouped `crate::{...}` imports included.
Prints the graph with `-v`.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(__file__), "..", "crates", "silt-core", "src")


def module_of(rel, folders):
    parts = rel[: -len(".rs")].split(os.sep)
    if parts[-1] == "mod":
        parts = parts[:-1]
    return "::".join(parts[:2]) if parts[0] in folders else parts[0]


def paths_in(source):
    found = re.findall(r"crate::(\w+)(?:::(\w+))?", source)
    for group in re.findall(r"crate::\{([^}]*)\}", source):
        found += re.findall(r"(?:^|,)\s*(\w+)(?:::(\w+))?", group)
    return found


def graph():
    folders = {d for d in os.listdir(ROOT) if os.path.isdir(os.path.join(ROOT, d))}
    raw = {}
    for dirpath, _, files in os.walk(ROOT):
        for name in files:
            if not name.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), ROOT)
            module = module_of(rel, folders)
            if module == "lib":
                continue
            with open(os.path.join(ROOT, rel)) as f:
                source = f.read().split("#[cfg(test)]")[0]
            deps = raw.setdefault(module, set())
            for a, b in paths_in(source):
                deps.add(f"{a}::{b}" if a in folders and b else a)
    names = set(raw)
    return {
        m: {d if d in names else d.split("::")[0] for d in deps} & names - {m}
        for m, deps in raw.items()
    }


def cycles(g):
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def main():
    g = graph()
    if "-v" in sys.argv:
        for m in sorted(g):
            print(f"{m} -> {', '.join(sorted(g[m]))}")
    found = cycles(g)
    for c in found:
        print("import cycle in silt-core: " + " <-> ".join(c), file=sys.stderr)
    if not found:
        print(f"silt-core: {len(g)} modules, no import cycle")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
