"""Make the installed `tensorrt-stubs` usable by mypy.

The package installs .pyi files straight into site-packages/tensorrt and tensorrt_bindings
without a py.typed marker (so mypy ignores them), and a few generated signatures are not valid
Python (a parameter named `in`, required parameters after defaulted ones). This copies them
into a stub directory with those lines repaired; point MYPYPATH at it.

    python tools/prepare_trt_stubs.py .cache/trt-stubs && MYPYPATH=.cache/trt-stubs mypy ...
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path


def _split_params(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def repair_line(line: str) -> str:
    m = re.match(r"^(\s*def \w+\()(.*)(\)\s*->.*)$", line)
    if not m:
        return line
    params = _split_params(m.group(2))
    fixed, seen_default = [], False
    for p in params:
        p = re.sub(r"^(\s*)in:", r"\1in_:", p)
        bare = p.strip()
        if "=" in bare:
            seen_default = True
        elif seen_default and bare and not bare.startswith("*"):
            p = p + " = ..."
        fixed.append(p)
    return m.group(1) + ",".join(fixed) + m.group(3)


def prepare(out: Path) -> Path:
    for package in ("tensorrt", "tensorrt_bindings"):
        spec = importlib.util.find_spec(package)
        locations = list(spec.submodule_search_locations or []) if spec else []
        sources = [Path(loc) for loc in locations if list(Path(loc).glob("*.pyi"))]
        if not sources:
            raise SystemExit(f"no .pyi files for {package}: pip install --no-deps tensorrt-stubs")
        target = out / package
        target.mkdir(parents=True, exist_ok=True)
        for pyi in sources[0].glob("*.pyi"):
            lines = [repair_line(line) for line in pyi.read_text().splitlines()]
            lines = [line for line in lines if "import tensorrt_libs" not in line]
            (target / pyi.name).write_text("\n".join(lines) + "\n")
    return out


if __name__ == "__main__":
    print(prepare(Path(sys.argv[1] if len(sys.argv) > 1 else ".cache/trt-stubs")))
