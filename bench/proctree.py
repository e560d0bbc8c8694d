"""The live processes under a root process, from /proc (Linux): what `bench.run` samples the
memory of and `bench.thread_cpu` the CPU of."""

from __future__ import annotations

import os


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="utf-8") as stat:
                # The command name is in parentheses and may hold spaces: split after it.
                fields = stat.read().rpartition(")")[2].split()
        except OSError:  # the process ended between listing and reading
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def process_tree(root: int) -> dict[int, int]:
    """`root` and all its live descendants, each with its parent's pid."""
    children = _children_by_parent()
    tree: dict[int, int] = {root: 0}
    pending = [root]
    while pending:
        pid = pending.pop()
        for child in children.get(pid, []):
            tree[child] = pid
            pending.append(child)
    return tree
