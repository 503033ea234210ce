"""numba, imported once for every kernel module, with its cache-load path made lean.

Why: loading a kernel from numba's on-disk cache first calls ``target_context.refresh()``, which imports and
installs every typing and lowering registry numba has (linalg, random, typed containers, ...): about 0.15 s
per process here, a third of a whole ``odfail evaluate`` at val2017 scale. A cache *load* uses none of them:
it unpickles types, links stored machine code and needs only the runtime (NRT) symbols. So a load
initialises the runtime alone; a cache *miss* compiles, and numba's compiler refreshes the full context
itself (``CompilerBase.__init__``), so compiling is unchanged. ``ODFAIL_NUMBA_FULL_REFRESH=1`` restores
numba's own behaviour, for debugging.
"""

from __future__ import annotations

import os

from numba import njit, prange  # noqa: F401  (re-exported for the kernel modules)
from numba.core import caching as _caching


def _load_overload(self, sig, target_context):
    from numba.core.runtime import rtsys

    rtsys.initialize(target_context)  # what stored code links against: NRT's allocation symbols
    with self._guard_against_spurious_io_errors():
        return self._load_overload(sig, target_context)


if os.environ.get("ODFAIL_NUMBA_FULL_REFRESH") != "1" and hasattr(_caching.Cache, "_load_overload"):
    _caching.Cache.load_overload = _load_overload


def load_cached(*dispatchers) -> int:
    """Load every machine-code version of these kernels that numba's cache holds for this machine, without calling
    them; returns how many. Run on a thread while the main one reads Parquet: linking stored code is mostly LLVM
    work outside the GIL, which a kernel's first call would otherwise do on the critical path. A version that
    is not cached is left for its first call to compile."""
    loaded = 0
    for dispatcher in dispatchers:
        cache = getattr(dispatcher, "_cache", None)
        cache_file = getattr(cache, "_cache_file", None)
        if cache_file is None:
            continue
        magic = dispatcher.targetctx.codegen().magic_tuple()
        for key in cache_file._load_index():
            if key[1] == magic and tuple(key[0]) not in dispatcher.overloads:
                dispatcher.compile(key[0])
                loaded += 1
    return loaded
