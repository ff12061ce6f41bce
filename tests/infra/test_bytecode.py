"""Bytecode for the runtime (`infra.bytecode`): which interpreter compiles it, what the `.pyc` files hold, and
the proof that an import uses them without compiling: the sources are made unparseable after the compile, and the
import still works, as it must on Lambda's read-only /opt and /var/task."""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra import bytecode, packaging

HERE = f"{sys.version_info[0]}.{sys.version_info[1]}"


def _fake_interpreter(path: Path, stdout: str, code: int = 0) -> Path:
    path.write_text(f"#!/bin/sh\necho '{stdout}'\nexit {code}\n")
    path.chmod(0o755)
    return path


def _compiler_here() -> bytecode.Compiler:
    compiler = bytecode.find_compiler(HERE)
    assert compiler is not None, "this interpreter's own version is always found"
    return compiler


def test_a_candidate_must_run_and_be_cpython_of_the_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shim = _fake_interpreter(tmp_path / "shim", "pyenv: python3.12: command not found", code=127)
    pypy = _fake_interpreter(tmp_path / "pypy", "pypy 3 12 cb0d0d0a")
    older = _fake_interpreter(tmp_path / "older", "cpython 3 11 a70d0d0a")
    good = _fake_interpreter(tmp_path / "good", "cpython 3 12 cb0d0d0a")
    bytecode.find_compiler.cache_clear()
    monkeypatch.setattr(bytecode, "_candidates", lambda version: [str(shim), str(pypy), str(older), str(good)])
    try:
        assert bytecode.find_compiler("3.12") == bytecode.Compiler(str(good), "3.12", "cb0d0d0a")
        monkeypatch.setattr(bytecode, "_candidates", lambda version: [str(shim), str(pypy), str(older)])
        bytecode.find_compiler.cache_clear()
        assert bytecode.find_compiler("3.12") is None
    finally:
        bytecode.find_compiler.cache_clear()


def test_compiled_files_are_unchecked_hash_and_name_the_runtime_path(tmp_path: Path) -> None:
    compiler = _compiler_here()
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mod.py").write_text("def answer():\n    return 42\n")

    assert bytecode.compile_tree(compiler, tmp_path, runtime_path="/opt/python") == 2

    pyc = (tmp_path / "pkg" / "__pycache__" / f"mod.{compiler.cache_tag}.pyc").read_bytes()
    assert pyc[:4] == bytes.fromhex(compiler.magic)
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, source never checked (PEP 552)
    assert marshal.loads(pyc[16:]).co_filename == "/opt/python/pkg/mod.py"


def test_an_import_uses_the_bytecode_without_reading_the_source(tmp_path: Path) -> None:
    compiler = _compiler_here()
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("from pkg.mod import answer\n")
    (tmp_path / "pkg" / "mod.py").write_text("def answer():\n    return 42\n")
    bytecode.compile_tree(compiler, tmp_path, runtime_path="/var/task")
    for source in tmp_path.rglob("*.py"):
        source.write_text("this is not python (\n")

    # -B: like a read-only mount, nothing is written; a compile from source would be a SyntaxError.
    script = "import sys; sys.path.insert(0, '.'); import pkg; print(pkg.answer())"
    result = subprocess.run([compiler.executable, "-I", "-B", "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, check=False)
    assert (result.returncode, result.stdout.strip()) == (0, "42"), result.stderr


def test_a_tree_that_does_not_compile_fails_naming_it(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def (:\n")
    with pytest.raises(bytecode.BytecodeError, match=f"python{HERE} could not compile {tmp_path}"):
        bytecode.compile_tree(_compiler_here(), tmp_path, runtime_path="/var/task")


def test_function_code_is_compiled_once_per_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packaging, "LAMBDA_PYTHON", HERE)
    sources = packaging._sources(["todos"])
    first = packaging.compiled_tree(sources, build_root=tmp_path)
    assert first is not None
    stamp = os.stat(first).st_mtime_ns
    assert packaging.compiled_tree(sources, build_root=tmp_path) == first and os.stat(first).st_mtime_ns == stamp
    tag = _compiler_here().cache_tag
    assert (first / "functions" / "todos" / "__pycache__" / f"handlers.{tag}.pyc").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_without_the_runtime_cpython_the_archive_ships_sources_and_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(packaging.bytecode, "find_compiler", lambda version: None)
    monkeypatch.setattr(bytecode.pulumi.log, "warn", warnings.append)
    bytecode.warn_missing_compiler.cache_clear()
    try:
        archive = packaging.code_archive(["todos"])
        packaging.code_archive(["orders"])
    finally:
        bytecode.warn_missing_compiler.cache_clear()
    assert "functions/todos/handlers.py" in archive.assets
    assert not [name for name in archive.assets if name.endswith(".pyc")]
    # Once per run, not once per archive.
    assert len(warnings) == 1 and "no CPython 3.12" in warnings[0] and "uv python install 3.12" in warnings[0]


def test_the_archive_packs_the_runtime_bytecode_of_every_module() -> None:
    if bytecode.find_compiler(packaging.LAMBDA_PYTHON) is None:
        pytest.skip("no CPython 3.12 on this machine: function code ships without bytecode (the program warns)")
    assets = packaging.code_archive(["orders"]).assets
    modules = [name for name in assets if name.endswith(".py")]
    for name in modules:
        folder, _, module = name.rpartition("/")
        assert f"{folder}/__pycache__/{module[:-3]}.cpython-312.pyc" in assets, name
