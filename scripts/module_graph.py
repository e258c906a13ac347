#!/usr/bin/env python3
"""The library's import graph between modules (one per file), and its cycles.

Every `crate::a::b…` path in src/ (outside `#[cfg(test)]` code and
comments) is an edge from the file's module to the longest module that
path names; `super::…` is resolved the same way. Edges between a module and
its own parent or child (a folder's mod.rs re-exporting what its files
define) are not counted. Prints the strongly connected components of more
than one module and exits 1 if there is any.

Usage: scripts/module_graph.py [--edges]
"""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def module_of(path):
    rel = os.path.relpath(path, SRC)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    return "::".join(rel)


files = {}
for root, _, names in os.walk(SRC):
    for f in names:
        if f.endswith(".rs"):
            p = os.path.join(root, f)
            m = module_of(p)
            if m in ("lib", "main") or m.startswith("cli"):
                continue  # the crate root and the binary's own modules
            files[m] = p
modules = set(files)


# `pub use child::Name` in a folder's mod.rs: a path through the folder to
# Name is an edge to the child that defines it, not to the folder.
reexports = {}
for m, p in files.items():
    text = open(p, encoding="utf-8").read()
    for child, names in re.findall(r"pub use (?:self::)?([a-z_][a-z0-9_]*)::\{?([A-Za-z0-9_, ]+)\}?;", text):
        if f"{m}::{child}" in modules:
            for name in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", names):
                reexports[(m, name)] = f"{m}::{child}"


def resolve(parts):
    for n in range(len(parts), 0, -1):
        cand = "::".join(parts[:n])
        if cand in modules:
            if n < len(parts) and (cand, parts[n]) in reexports:
                return reexports[(cand, parts[n])]
            return cand
    return None


def related(a, b):
    return a == b or a.startswith(b + "::") or b.startswith(a + "::")


edges = {m: set() for m in modules}
for m, p in files.items():
    text = open(p, encoding="utf-8").read()
    i = text.find("#[cfg(test)]")
    text = text if i < 0 else text[:i]
    text = re.sub(r"//[^\n]*", "", text)
    here = m.split("::")
    # A file's `super` is its parent module; a folder's mod.rs has the folder's parent.
    parent = here[:-1]
    refs = [r.split("::") for r in re.findall(r"crate((?:::[A-Za-z_][A-Za-z0-9_]*)+)", text)]
    refs = [r[1:] for r in refs]
    refs += [parent + r.split("::")[1:] for r in re.findall(r"super((?:::[A-Za-z_][A-Za-z0-9_]*)+)", text)]
    # `use super::{a, b}` and `use crate::x::{a, b}` groups.
    for prefix, group in re.findall(r"(crate(?:::[a-z_][a-z0-9_]*)*|super(?:::[a-z_][a-z0-9_]*)*)::\{([^}]*)\}", text):
        base = prefix.split("::")
        base = base[1:] if base[0] == "crate" else parent + base[1:]
        for name in re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)\b", group):
            refs.append(base + [name])
    for r in refs:
        t = resolve(r)
        if t and not related(m, t):
            edges[m].add(t)

index, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]


def visit(v):
    index[v] = low[v] = n[0]
    n[0] += 1
    stack.append(v)
    on.add(v)
    for w in sorted(edges[v]):
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
        sccs.append(sorted(comp))


sys.setrecursionlimit(10000)
for v in sorted(modules):
    if v not in index:
        visit(v)

if "--edges" in sys.argv:
    for m in sorted(edges):
        print(f"{m} -> {', '.join(sorted(edges[m]))}")
cycles = [c for c in sccs if len(c) > 1]
for c in cycles:
    print(f"cycle of {len(c)}:")
    for m in c:
        print(f"  {m} -> {', '.join(sorted(d for d in edges[m] if d in c))}")
print(f"{len(modules)} modules, {len(cycles)} cycles")
sys.exit(1 if cycles else 0)
