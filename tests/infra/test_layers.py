"""The Lambda layers: locks, the runtime's platform tags, the cache key, and real builds from an empty cache.

The slow tests download the locked wheels from the package index (no pip cache, a fresh build root) and look
inside the zips the way Lambda would: everything under `python/`, every shared object an aarch64 ELF.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import re
import struct
import threading
import time
import zipfile
from pathlib import Path

import pytest

from infra import layers
from infra.layers import DEPS, LAYERS, PILLOW, Layer, LayerBuildError
from sim.capture import Graph

LAYER_VERSION = "aws:lambda/layerVersion:LayerVersion"
EM_AARCH64 = 183
_SHARED_OBJECT = re.compile(r"\.so(\.\d+)*$")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copy_lock(layer: Layer, root: Path, text: str | None = None) -> Layer:
    """The same layer with its requirements and lock copied under `root` (so a test can change them)."""
    requirements = root / layer.requirements.name
    requirements.write_text(layer.requirements.read_text())
    copy = Layer(layer.name, requirements)
    copy.lock.write_text(layer.lock.read_text() if text is None else text)
    return copy


# --- Target and cache key (pure) ----------------------------------------------------------------------------

def test_platform_tags_are_every_glibc_from_2_17_to_2_34_newest_first() -> None:
    tags = layers.platform_tags()
    expected = [f"manylinux_2_{minor}_aarch64" for minor in range(34, 16, -1)] + ["manylinux2014_aarch64"]
    assert list(tags) == expected
    # Pillow 13's aarch64 wheel is manylinux_2_28: the tag manylinux2014 alone would find nothing.
    assert "manylinux_2_28_aarch64" in tags and "manylinux_2_35_aarch64" not in tags


def test_pip_installs_only_hashed_binary_wheels_for_cpython312_on_every_tag(tmp_path: Path) -> None:
    command = layers.pip_command(DEPS.lock, tmp_path / "python", pip_cache=False)
    for flag in ("--require-hashes", "--no-deps", "--only-binary=:all:", "--no-cache-dir", "--no-compile"):
        assert flag in command, flag
    pairs = list(itertools.pairwise(command))
    assert ("--implementation", "cp") in pairs and ("--python-version", "3.12") in pairs
    assert ("--abi", "cp312") in pairs and ("--target", str(tmp_path / "python")) in pairs
    assert [b for a, b in pairs if a == "--platform"] == list(layers.platform_tags())
    assert "--no-cache-dir" not in layers.pip_command(DEPS.lock, tmp_path, pip_cache=True)


def test_cache_key_follows_the_lock_and_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    lock = DEPS.lock.read_bytes()
    key = layers.cache_key(lock)
    assert layers.cache_key(lock) == key and re.fullmatch(r"[0-9a-f]{64}", key)
    assert layers.cache_key(lock + b"\n") != key
    monkeypatch.setattr(layers, "LAMBDA_GLIBC", (2, 35))
    assert layers.cache_key(lock) != key
    monkeypatch.undo()
    monkeypatch.setattr(layers, "LAMBDA_PYTHON", "3.13")
    assert layers.cache_key(lock) != key
    monkeypatch.undo()
    # The tools that write the bytes: another zlib (or pip) may compress (or lay out) the same wheels differently.
    monkeypatch.setattr(layers.zlib, "ZLIB_RUNTIME_VERSION", "0.0.0")
    assert layers.cache_key(lock) != key
    monkeypatch.undo()
    assert layers.cache_key(lock) == key


def test_zip_is_named_after_the_layer_and_its_key(tmp_path: Path) -> None:
    for layer in LAYERS:
        key = layers.cache_key(layer.lock.read_bytes())
        assert layers.zip_path(layer, tmp_path) == tmp_path / f"{layer.name}-{key[:16]}.zip"
    assert layers.zip_path(DEPS, tmp_path) != layers.zip_path(PILLOW, tmp_path)


def test_resolver_platform_is_the_runtime_glibc() -> None:
    assert layers.resolver_platform() == "aarch64-manylinux_2_34"
    assert "aarch64-manylinux_2_34" in layers.lock_command(DEPS)


# --- Locks (pure) -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_lock_pins_every_package_with_hashes(layer: Layer) -> None:
    text = layer.lock.read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])  # after uv's two header lines
    assert blocks, layer.lock
    for block in blocks:
        assert re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*==\S+ \\$", block.splitlines()[0]), block
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", block), block
    assert len(blocks) == len(layers.locked_packages(layer.lock))


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_lock_holds_the_top_level_pins_so_it_is_not_stale(layer: Layer) -> None:
    locked = layers.locked_packages(layer.lock)
    for line in layer.requirements.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            assert locked.get(name.strip().lower()) == version.strip(), f"{line}: run `make lock`"


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_lock_leaves_boto3_and_botocore_to_the_runtime(layer: Layer) -> None:
    assert not layers.RUNTIME_PROVIDED & layers.locked_packages(layer.lock).keys(), layer.lock
    layers.check_lock(layer)


def test_a_lock_pulling_in_boto3_is_refused(tmp_path: Path) -> None:
    layer = _copy_lock(DEPS, tmp_path, DEPS.lock.read_text() + "botocore==1.44.8 \\\n    --hash=sha256:" + "0" * 64)
    with pytest.raises(LayerBuildError, match=r"botocore.*runtime provides") as failure:
        layers.check_lock(layer)
    assert str(layer.lock) in str(failure.value)


# --- Zip, cache and locking (pure) --------------------------------------------------------------------------

def _tree(root: Path, mtime: float, mode: int) -> None:
    for name, body in (("python/b/mod.py", b"x = 1\n"), ("python/a.py", b"a\n"), ("python/b/ext.so", b"\x7fELF")):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        path.chmod(0o755 if name.endswith(".so") else mode)
        os.utime(path, (mtime, mtime))


def test_zip_bytes_do_not_depend_on_times_umask_or_walk_order(tmp_path: Path) -> None:
    _tree(tmp_path / "one", 1_700_000_000, 0o600)
    _tree(tmp_path / "two", 1_800_000_000, 0o664)
    layers.write_zip(tmp_path / "one", ["python"], tmp_path / "one.zip")
    layers.write_zip(tmp_path / "two", ["python"], tmp_path / "two.zip")
    assert _sha256(tmp_path / "one.zip") == _sha256(tmp_path / "two.zip")
    with zipfile.ZipFile(tmp_path / "one.zip") as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == ["python/a.py", "python/b/ext.so", "python/b/mod.py"]
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.filename: i.external_attr >> 16 for i in infos} == {
        "python/a.py": 0o100644, "python/b/ext.so": 0o100755, "python/b/mod.py": 0o100644}


def test_source_code_hash_is_base64_of_the_zip_sha256(tmp_path: Path) -> None:
    archive = tmp_path / "layer.zip"
    archive.write_bytes(b"zip bytes")
    assert layers.source_code_hash(archive) == base64.b64encode(hashlib.sha256(b"zip bytes").digest()).decode()
    archive.write_bytes(b"other bytes, other size")
    assert layers.source_code_hash(archive) == base64.b64encode(
        hashlib.sha256(b"other bytes, other size").digest()).decode()


def test_a_built_zip_is_reused_without_running_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = layers.zip_path(DEPS, tmp_path)
    built.write_bytes(b"built before")

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip ran for a cached layer")

    monkeypatch.setattr(layers, "_install", no_pip)
    assert layers.build_layer(DEPS, build_root=tmp_path) == built
    assert built.read_bytes() == b"built before"


def test_concurrent_builds_of_one_layer_run_pip_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    installs: list[Path] = []

    def slow_install(lock: Path, site: Path, *, pip_cache: bool) -> None:
        installs.append(lock)
        time.sleep(0.3)  # long enough for the second builder to reach the lock while the first holds it
        (site / "pkg").mkdir(parents=True)
        (site / "pkg" / "__init__.py").write_text("")

    monkeypatch.setattr(layers, "_install", slow_install)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(layers.build_layer(DEPS, build_root=tmp_path)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert installs == [DEPS.lock]
    assert results == [layers.zip_path(DEPS, tmp_path)] * 2
    # Nothing half-built is left beside the zip: the staging folder went with the build.
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [results[0].name]


def test_a_killed_build_leaves_nothing_the_next_build_keeps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = layers.zip_path(DEPS, tmp_path)
    stale = tmp_path / f".{target.stem}-killed"
    (stale / "python").mkdir(parents=True)

    def failing_install(lock: Path, site: Path, *, pip_cache: bool) -> None:
        raise LayerBuildError(f"{lock}: no network")

    monkeypatch.setattr(layers, "_install", failing_install)
    with pytest.raises(LayerBuildError, match="no network"):
        layers.build_layer(DEPS, build_root=tmp_path)
    assert not stale.exists() and not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == [f".{target.stem}.lock"]


# --- The program's layer versions (under the recording mocks) -----------------------------------------------

@pytest.mark.parametrize(("resource", "layer"), [("deps", DEPS), ("images-pillow", PILLOW)])
def test_layer_version_carries_the_zip_and_its_source_code_hash(dev_graph: Graph, resource: str,
                                                                layer: Layer) -> None:
    version = dev_graph.one(LAYER_VERSION, resource)
    archive = layers.zip_path(layer)
    assert version.inputs["code"] == {"path": str(archive)}, version.urn
    assert archive.is_file(), archive
    digest = base64.b64encode(hashlib.sha256(archive.read_bytes()).digest()).decode()
    assert version.inputs["sourceCodeHash"] == digest, version.urn


# --- Real builds from an empty cache (slow: downloads the locked wheels) ------------------------------------

@pytest.fixture(scope="module")
def cold_zips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("layers")
    return {layer.name: layers.build_layer(layer, build_root=root, pip_cache=False) for layer in LAYERS}


def _entries(archive: Path) -> list[str]:
    with zipfile.ZipFile(archive) as opened:
        return opened.namelist()


def _elf_machine(header: bytes) -> tuple[int, int, int]:
    """(EI_CLASS, EI_DATA, e_machine) of an ELF header: 2 is ELF64, 1 little-endian, 183 AArch64."""
    assert header[:4] == b"\x7fELF", header[:4]
    (machine,) = struct.unpack_from("<H", header, 18)
    return header[4], header[5], machine


@pytest.mark.slow
@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_cold_build_puts_every_file_under_python(cold_zips: dict[str, Path], layer: Layer) -> None:
    archive = cold_zips[layer.name]
    assert archive.is_file() and archive.name == layers.zip_path(layer).name
    entries = _entries(archive)
    assert entries and all(name.startswith("python/") for name in entries), archive
    assert not [n for n in entries if n.startswith("python/bin/")], archive
    assert not [n for n in entries if n.endswith(".pyc") and ".cpython-312." not in n], archive
    assert not {n.split("/")[1] for n in entries} & {"boto3", "botocore", "s3transfer"}, archive
    assert archive.stat().st_size < 50_000_000  # Lambda's limit for a directly uploaded zip


@pytest.mark.slow
@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_every_shared_object_is_an_aarch64_elf64(cold_zips: dict[str, Path], layer: Layer) -> None:
    with zipfile.ZipFile(cold_zips[layer.name]) as archive:
        shared = [n for n in archive.namelist() if _SHARED_OBJECT.search(n)]
        assert shared, layer.name
        for name in shared:
            with archive.open(name) as body:
                assert _elf_machine(body.read(20)) == (2, 1, EM_AARCH64), name


@pytest.mark.slow
@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_every_module_ships_unchecked_bytecode_for_the_runtime(cold_zips: dict[str, Path], layer: Layer) -> None:
    # /opt is read-only on Lambda: a module without its .pyc is compiled on every cold start (infra.bytecode).
    if layers.runtime_compiler() is None:
        pytest.skip("no CPython 3.12 on this machine: the layers ship no bytecode (the build warns)")
    with zipfile.ZipFile(cold_zips[layer.name]) as archive:
        entries = set(archive.namelist())
        sources = [n for n in entries if n.endswith(".py")]
        assert sources, layer.name
        missing = [n for n in sources if _pyc_of(n) not in entries]
        assert not missing, missing[:5]
        for name in sources[:50]:
            header = archive.read(_pyc_of(name))[:8]
            assert header[:4] == bytes.fromhex(layers.runtime_compiler().magic), name  # type: ignore[union-attr]
            assert int.from_bytes(header[4:8], "little") == 0b01, name  # PEP 552: hash-based, source not checked


def _pyc_of(source: str) -> str:
    folder, _, module = source.rpartition("/")
    return f"{folder}/__pycache__/{module.removesuffix('.py')}.cpython-312.pyc"


@pytest.mark.slow
def test_pillow_and_pydantic_core_extensions_are_in_their_layers(cold_zips: dict[str, Path]) -> None:
    assert any(re.fullmatch(r"python/PIL/_imaging\..*\.so", n) for n in _entries(cold_zips["pillow"]))
    deps = _entries(cold_zips["deps"])
    assert any(re.fullmatch(r"python/pydantic_core/_pydantic_core\..*\.so", n) for n in deps)
    assert not any(n.startswith("python/PIL/") for n in deps)


@pytest.mark.slow
def test_building_again_gives_the_same_bytes(cold_zips: dict[str, Path], tmp_path: Path) -> None:
    for layer in LAYERS:
        again = layers.build_layer(layer, build_root=tmp_path, pip_cache=False)
        assert again.name == cold_zips[layer.name].name
        assert _sha256(again) == _sha256(cold_zips[layer.name]), layer.name


@pytest.mark.slow
def test_a_lock_whose_hash_does_not_match_fails_naming_the_lock(tmp_path: Path) -> None:
    idna = layers.locked_packages(DEPS.lock)["idna"]
    layer = _copy_lock(DEPS, tmp_path, f"idna=={idna} \\\n    --hash=sha256:{'0' * 64}\n")
    with pytest.raises(LayerBuildError, match="do not match the lock's hashes") as failure:
        layers.build_layer(layer, build_root=tmp_path / "build", pip_cache=False)
    assert str(layer.lock) in str(failure.value)
    assert "DO NOT MATCH THE HASHES" in str(failure.value)  # pip's own report is kept
    assert not list((tmp_path / "build").glob("*.zip"))
