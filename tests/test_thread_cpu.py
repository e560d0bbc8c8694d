"""Tests of bench.thread_cpu: the CPU of a command's process tree, by process and thread."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.thread_cpu import main, thread_group

# A parent that starts a child burning CPU for about a second and waits for it.
_CHILD = "import time\nend = time.process_time() + 1.0\nwhile time.process_time() < end: pass"
_PARENT = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {_CHILD!r}], check=True)"


def test_thread_names_fold_numbers_but_keep_the_two_compilers_apart() -> None:
    assert thread_group("Executor task launch worker for task 12.0") == (
        "Executor task launch worker for task #.#"
    )
    assert thread_group("C2 CompilerThread0") == "C2 compiler"
    assert thread_group("C1 CompilerThread0") == "C1 compiler"
    assert thread_group("G1 Conc#0") == "G# Conc##"


def test_the_cpu_of_a_child_process_is_counted(tmp_path: Path) -> None:
    out = tmp_path / "cpu.json"
    code = main(["--interval", "0.05", "--out", str(out), "--", sys.executable, "-c", _PARENT])
    assert code == 0
    result = json.loads(out.read_text())
    python = sum(seconds for key, seconds in result["cpu_s"].items() if key.startswith("python"))
    # The child's second, read before it ended (one 0.05 s interval may be lost).
    assert python >= 0.8
    assert result["wall_s"] >= 1.0


def test_a_failing_command_returns_its_code(tmp_path: Path) -> None:
    assert main(["--", sys.executable, "-c", "raise SystemExit(3)"]) == 3
