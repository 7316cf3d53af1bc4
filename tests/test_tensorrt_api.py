"""The TensorRT backend against the real 10.3 and 11.4 Python bindings, without a GPU.

Technique (shared/notes/tensorrt-api.md, section 0): the bindings wheels are real; stand-in
native libraries exporting only the factory symbols let them import, so every enum, class and
method name the backend uses can be looked up. mypy against tensorrt-stubs checks signatures.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BACKEND = ROOT / "hypermm_edge" / "engines" / "tensorrt_backend.py"
CACHE = Path(os.environ.get("HYPERMM_TRT_BINDINGS_CACHE", ROOT / ".cache" / "trt-bindings"))
VERSIONS = {"10.3": ("tensorrt-cu12-bindings==10.3.0", "10"), "11.4": ("tensorrt-cu13-bindings==11.4.0.106", "11")}

# Methods and properties the backend calls on TensorRT objects (module-level names are found
# by parsing the backend; instance methods are listed here with the class they belong to).
INSTANCE_API = {
    "Builder": ["create_network", "create_builder_config", "create_optimization_profile",
                "build_serialized_network"],
    "IBuilderConfig": ["set_memory_pool_limit", "add_optimization_profile", "create_timing_cache",
                       "set_timing_cache", "get_timing_cache"],
    "IOptimizationProfile": ["set_shape"],
    "INetworkDefinition": ["get_input"],
    "ITensor": ["name"],
    "OnnxParser": ["parse_from_file", "num_errors", "get_error"],
    "ParserError": ["desc"],
    "Runtime": ["deserialize_cuda_engine"],
    "ICudaEngine": ["create_execution_context", "get_tensor_name", "num_io_tensors", "get_tensor_mode",
                    "get_tensor_profile_shape", "device_memory_size_v2"],
    "IExecutionContext": ["set_input_shape", "get_tensor_shape", "set_tensor_address", "execute_async_v3"],
    "ITimingCache": ["serialize"],
}

STUB_C = """
void* createInferBuilder_INTERNAL(void* a, int b){return 0;}
void* createInferRefitter_INTERNAL(void* a, void* b, int c){return 0;}
void* createInferRuntime_INTERNAL(void* a, int b){return 0;}
void* getBuilderPluginRegistry(int a){return 0;}
void* getPluginRegistry(void){return 0;}
void* createNvOnnxParser_INTERNAL(void* a, void* b, int c){return 0;}
void* createNvOnnxParserRefitter_INTERNAL(void* a, void* b, int c){return 0;}
int getNvOnnxParserVersion(void){return 0;}
int initLibNvInferPlugins(void* a, const char* b){return 0;}
"""


def module_attribute_chains() -> set[str]:
    """Every `trt.A.B...` the backend mentions, e.g. 'NetworkDefinitionCreationFlag.STRONGLY_TYPED'."""
    chains = set()
    for node in ast.walk(ast.parse(BACKEND.read_text())):
        if isinstance(node, ast.Attribute):
            parts, cur = [], node
            while isinstance(cur, ast.Attribute):
                parts.append(cur.attr)
                cur = cur.value
            if isinstance(cur, ast.Name) and cur.id == "trt":
                chains.add(".".join(reversed(parts)))
    # keep only maximal chains (drop 'ILogger' when 'ILogger.Severity.ERROR' is there)
    return {c for c in chains if not any(o != c and o.startswith(c + ".") for o in chains)}


def _bindings(version: str) -> tuple[Path, Path]:
    requirement, major = VERSIONS[version]
    target = CACHE / version
    libs = CACHE / f"libs{major}"
    if not (target / "tensorrt_bindings").is_dir():
        wheels = CACHE / "wheels"
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                               "--python-version", f"{sys.version_info.major}.{sys.version_info.minor}",
                               "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux_2_28_x86_64",
                               requirement, "-d", str(wheels)], capture_output=True, text=True)
        name = requirement.split("==")[0].replace("-", "_")
        found = sorted(wheels.glob(f"{name}-{requirement.split('==')[1]}-*.whl")) if wheels.is_dir() else []
        if not found:
            pytest.skip(f"could not download {requirement} from PyPI: {proc.stderr.strip()[-300:]}")
        import zipfile

        with zipfile.ZipFile(found[0]) as z:
            z.extractall(target)
    if not (libs / f"libnvinfer.so.{major}").exists():
        if shutil.which("gcc") is None:
            pytest.skip("gcc is needed to build stand-in TensorRT libraries")
        libs.mkdir(parents=True, exist_ok=True)
        src = libs / "stub.c"
        src.write_text(STUB_C)
        for lib in ("nvinfer", "nvinfer_plugin", "nvonnxparser"):
            subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(libs / f"lib{lib}.so.{major}"), str(src),
                            f"-Wl,-soname,lib{lib}.so.{major}"], check=True)
    return target, libs


def _missing(version: str, chains: list[str]) -> list[str]:
    target, libs = _bindings(version)
    code = f"""
import json, tensorrt_bindings as trt
missing = []
for chain in {chains!r}:
    obj = trt
    for part in chain.split("."):
        if not hasattr(obj, part):
            missing.append(chain)
            break
        obj = getattr(obj, part)
print(json.dumps(missing))
"""
    env = {**os.environ, "LD_LIBRARY_PATH": str(libs), "PYTHONPATH": str(target)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _all_uses() -> list[str]:
    return sorted(module_attribute_chains() | {f"{c}.{m}" for c, ms in INSTANCE_API.items() for m in ms})


def test_backend_uses_are_found_by_the_parser():
    chains = module_attribute_chains()
    assert "NetworkDefinitionCreationFlag.STRONGLY_TYPED" in chains
    assert "MemoryPoolType.WORKSPACE" in chains and "TensorIOMode.INPUT" in chains


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_every_tensorrt_attribute_exists(version):
    assert _missing(version, _all_uses()) == []


def test_the_check_catches_removed_api():
    """Negative control: names removed in 11 are reported missing there and present in 10.3."""
    removed = ["BuilderFlag.FP16", "NetworkDefinitionCreationFlag.EXPLICIT_BATCH", "Builder.platform_has_fast_fp16"]
    assert _missing("11.4", removed) == removed
    assert _missing("10.3", removed) == []


def _mypy(path: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """mypy with the installed tensorrt-stubs made visible (tools/prepare_trt_stubs.py)."""
    pytest.importorskip("mypy")
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from prepare_trt_stubs import prepare
    finally:
        sys.path.pop(0)
    try:
        stubs = prepare(tmp_path / "stubs")
    except SystemExit as exc:
        pytest.skip(str(exc))
    env = {**os.environ, "MYPYPATH": str(stubs)}
    return subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", str(path)], capture_output=True,
                          text=True, cwd=ROOT, env=env)


def test_mypy_clean_against_tensorrt_stubs(tmp_path):
    proc = _mypy(BACKEND, tmp_path)
    assert proc.returncode == 0, proc.stdout


def test_mypy_catches_misuse(tmp_path):
    bad = tmp_path / "bad_trt.py"
    bad.write_text("import tensorrt as trt\n"
                   "def f(b: trt.Builder, n: trt.INetworkDefinition, c: trt.IBuilderConfig) -> None:\n"
                   "    b.build_serialized_network(n)\n"
                   "    c.set_memory_pool_limit('workspace', 1)\n")
    proc = _mypy(bad, tmp_path)
    assert proc.returncode == 1, proc.stdout
    assert 'Missing positional argument "config"' in proc.stdout
    assert 'incompatible type "str"; expected "MemoryPoolType"' in proc.stdout
