#!/usr/bin/env python3
"""Import cycles between the source files of src/: each `crate::` or `super::` path in
code (doc comments and test modules left out) is an edge to the file that defines it.
Prints each cycle and their count; exits 1 when there is any (tests/it/tool.rs runs it).

usage: python3 scripts/import-graph.py [--edges]
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def modules():
    out = {}
    for d, _, fs in os.walk(ROOT):
        for f in fs:
            if f.endswith(".rs"):
                p = os.path.join(d, f)
                rel = os.path.relpath(p, ROOT)[:-3].replace(os.sep, "/")
                mod = rel.removesuffix("/mod").replace("/", "::")
                out["crate" if mod == "lib" else mod] = p
    return out


def resolve(path, cur, files):
    parts = path.split("::")
    if parts[0] == "super":
        parts = cur.split("::")[:-1] + parts[1:]
    else:
        parts = parts[1:]
    while parts:
        m = "::".join(parts)
        if m in files:
            return m
        parts = parts[:-1]
    return None


def edges(files):
    out = {}
    for mod, p in files.items():
        src = open(p, encoding="utf-8").read().split("#[cfg(test)]")[0]
        src = "\n".join(line.split("//")[0] for line in src.splitlines())
        targets = set()
        for m in re.finditer(r"\b(?:crate|super)(?:::[A-Za-z_][A-Za-z0-9_]*)+", src):
            t = resolve(m.group(0), mod, files)
            if t and t not in (mod, "crate") and not t.startswith(mod + "::"):
                targets.add(t)
        out[mod] = targets
    return out


def cycles(graph):
    found, seen = [], set()

    def walk(node, stack):
        for nxt in sorted(graph.get(node, ())):
            if nxt in stack:
                c = stack[stack.index(nxt):]
                if frozenset(c) not in seen:
                    seen.add(frozenset(c))
                    found.append(c + [nxt])
            else:
                walk(nxt, stack + [nxt])

    for n in sorted(graph):
        walk(n, [n])
    return found


def main():
    graph = edges(modules())
    if "--edges" in sys.argv:
        for n in sorted(graph):
            print(f"{n} -> {', '.join(sorted(graph[n]))}")
    found = cycles(graph)
    for c in found:
        print(" -> ".join(c))
    print(f"{len(found)} cycles")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
