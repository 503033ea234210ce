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
