"""numba, imported once for every kernel module: the kernels' flags, `borrowed`, and `load_cached`.

Only numba's public interfaces are used (``njit``, ``prange``, ``numba.extending.intrinsic``). `load_cached` reads
the dispatcher's cache index, which numba does not document; where that differs in another numba, it loads
nothing and each kernel's first call loads or compiles it as numba always does.

Until 2026-12 this module also replaced four private numba functions to make loading cached kernels cheaper
(~0.18 s a process together, measured on a 5k ``odfail evaluate`` of ~0.55 s: no registry refresh 0.11 s,
stored runtime helpers 0.04 s, no module imports for inlined functions' environments 0.03 s, typeof without
``numpy.ma`` ~0). They were removed: start-up at that scale is not what users wait for, and each one could break
with any numba release (see docs/performance.md).
"""

from __future__ import annotations

from numba import njit, prange  # noqa: F401  (re-exported for the kernel modules)
from numba.extending import intrinsic

# Every odfail kernel's flags, here only. fastmath stays off: it would reorder float operations and break exactness.
JIT = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}


@intrinsic
def borrowed(typingctx, arr):
    """A view of ``arr`` without its reference count, for a kernel that passes one array through many small
    non-inlined calls: numba increfs and decrefs every array argument of every call, two atomic operations each
    (a fifth of the JSON scanner's time). Only for arrays that outlive the kernel (its arguments)."""
    def codegen(context, builder, signature, args):
        src = context.make_array(arr)(context, builder, value=args[0])
        view = context.make_array(arr)(context, builder)
        context.populate_array(view, data=src.data, shape=src.shape, strides=src.strides, itemsize=src.itemsize,
                               meminfo=None, parent=None)
        return view._getvalue()

    return arr(arr), codegen


def load_cached(*dispatchers) -> int:
    """Load every machine-code version of these kernels that numba's cache holds for this machine, without calling
    them; returns how many. Run on a thread while the main one reads Parquet: linking stored code is mostly LLVM
    work outside the GIL, which a kernel's first call would otherwise do on the critical path. A version that
    is not cached is left for its first call to compile; a numba whose cache looks different loads nothing here."""
    loaded = 0
    for dispatcher in dispatchers:
        try:
            cache_file = dispatcher._cache._cache_file
            magic = dispatcher.targetctx.codegen().magic_tuple()
            keys = [key for key in cache_file._load_index() if key[1] == magic]
        except Exception:  # another numba's internals: leave loading to the first call
            continue
        for key in keys:
            if tuple(key[0]) not in dispatcher.overloads:
                dispatcher.compile(key[0])
                loaded += 1
    return loaded
