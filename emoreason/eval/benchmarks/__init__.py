"""The benchmark registry: `get_benchmark("rafdb")` etc. One module per dataset, each a small spec + reader."""

from __future__ import annotations

from . import affectnet, bp4d, ckplus, disfa, emotionet, fer2013, generic, jaffe, rafdb
from .base import Benchmark, LayoutError, Sample

BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in [
        rafdb.BENCHMARK,
        *affectnet.BENCHMARKS,
        *fer2013.BENCHMARKS,
        disfa.BENCHMARK,
        bp4d.BENCHMARK,
        ckplus.BENCHMARK,
        jaffe.BENCHMARK,
        emotionet.BENCHMARK,
        *generic.BENCHMARKS,
    ]
}


def get_benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}") from None


__all__ = ["BENCHMARKS", "Benchmark", "LayoutError", "Sample", "get_benchmark"]
