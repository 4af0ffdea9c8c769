#!/usr/bin/env python3
"""Module map of a crate and a check that dependencies point one way.

Reads every `crate::a::b` path in the non-test code of each file under SRC and draws an edge
from the file's module to the module it names, at DEPTH levels (1: top-level modules such as
`api`, `tracking`; 2: also `tracking::poller`). Edges from a module to its own parent or child
are not counted. Prints the map; exits 1 if there is a cycle.

    scripts/modgraph.py src [DEPTH]      scripts/modgraph.py carriers/src
"""
import os
import re
import sys


def module_of(root, path):
    parts = os.path.relpath(path, root)[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def non_test(text):
    # A `#[cfg(test)]` module is at the end of a file by house style.
    return re.split(r"#\[cfg\(test\)\]", text)[0]


def graph(root, depth):
    edges = {}
    for folder, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".rs") or name == "tests.rs":
                continue
            path = os.path.join(folder, name)
            me = module_of(root, path)
            src = non_test(open(path, encoding="utf-8").read())
            names = re.findall(r"crate::((?:[a-z_][a-z0-9_]*)(?:::[a-z_][a-z0-9_]*)*)", src)
            for group in re.findall(r"\buse crate::\{([^}]*)\}", src, re.S):
                names += [p.strip() for p in group.split(",") if p.strip()]
            src_mod = "::".join(me[:depth]) or "crate"
            for n in names:
                target = "::".join(n.split("::")[:depth])
                if not re.fullmatch(r"[a-z_][a-z0-9_]*(::[a-z_][a-z0-9_]*)*", target):
                    continue
                if target == src_mod or src_mod.startswith(target + "::") or target.startswith(src_mod + "::"):
                    continue
                edges.setdefault(src_mod, set()).add(target)
    return edges


def cycles(edges):
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
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
                found.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return found


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "src"
    depth = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    edges = graph(root, depth)
    for module in sorted(edges):
        print(f"{module} -> {', '.join(sorted(edges[module]))}")
    found = cycles(edges)
    for c in found:
        print(f"CYCLE in {root}: {' <-> '.join(c)}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
