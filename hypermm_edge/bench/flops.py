"""Arithmetic of the trunk, and the machine's measured fp32 GEMM rate to compare it with."""

from __future__ import annotations

import time

import numpy as np

from hypermm_edge.config import TRUNK_CHANNELS

_VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


def trunk_macs_per_slice(size: int) -> int:
    """Multiply-accumulates of VGG11's conv trunk on one size x size slice (~7.6 G at 224)."""
    macs, channels, hw = 0, 3, size
    for item in _VGG11:
        if item == "M":
            hw //= 2
        else:
            macs += hw * hw * channels * int(item) * 9
            channels = int(item)
    assert channels == TRUNK_CHANNELS
    return macs


def gemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Best fp32 GFLOP/s of numpy's BLAS on an n x n x n matrix product (all cores)."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    a @ b  # warm-up: thread pool start, page faults
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9
