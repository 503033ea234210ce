"""numba, imported once for every kernel module, with its cache-load path made lean.

Why: loading a kernel from numba's on-disk cache first calls ``target_context.refresh()``, which imports and
installs every typing and lowering registry numba has (linalg, random, typed containers, ...): about 0.15 s
per process here, a third of a whole ``odfail evaluate`` at val2017 scale. A cache *load* uses none of them:
it unpickles types, links stored machine code and needs only the runtime (NRT) symbols. So a load
initialises the runtime alone; a cache *miss* compiles, and numba's compiler refreshes the full context
itself (``CompilerBase.__init__``), so compiling is unchanged.

A kernel's first call types its arguments in Python, and numba's ``typeof`` of an array asks whether it is a
``numpy.ma.MaskedArray``: numpy 2 imports ``numpy.ma`` on that first access (~0.03 s a process, which odfail never
uses). The check now runs for ndarray subclasses only, which a masked array is; a plain ndarray is typed as
before.

Two more per-process costs of a load go the same way (~0.08 s together, measured on tidecv's two kernels):
- the runtime's own helper functions (atomic reference counts and the like) were compiled from LLVM IR in
  every process, optimiser included; their machine code is now kept beside the kernels' cache (numba's
  NUMBA_CACHE_DIR if set, else this package's ``__pycache__``; keyed by numba and llvmlite versions and the
  CPU) and loaded like a cached kernel;
- each stored kernel carries an environment per numba-internal function it inlined (array allocation, sorting,
  ...) and rebuilding one imported that function's module (numba.np.arrayobj, numba.cpython.unicode, ... ~0.05
  s) for its globals, which only object-mode code reads; odfail's kernels are all nopython, so a module not
  imported yet is not imported for that.
``ODFAIL_NUMBA_FULL_REFRESH=1`` restores numba's own behaviour for all four, for debugging.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from numba import njit, prange  # noqa: F401  (re-exported for the kernel modules)
from numba.core import caching as _caching
from numba.core import environment as _environment
from numba.core.runtime import nrtdynmod as _nrtdynmod
from numba.core.typing import typeof as _typeof
from numba.extending import intrinsic

# Every odfail kernel's flags, here only. fastmath stays off: it would reorder float operations and break exactness.
JIT = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}


def _load_overload(self, sig, target_context):
    from numba.core.runtime import rtsys

    rtsys.initialize(target_context)  # what stored code links against: NRT's allocation symbols
    with self._guard_against_spurious_io_errors():
        return self._load_overload(sig, target_context)


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


def _nrt_functions(ctx):
    """numba's runtime helpers for this machine: their stored machine code, else compiled and stored."""
    import hashlib
    import pickle

    import llvmlite
    import numba
    from numba.core import config

    codegen = ctx.codegen()
    key = repr((numba.__version__, llvmlite.__version__, codegen.magic_tuple())).encode()
    # beside the kernels: numba's cache directory when NUMBA_CACHE_DIR sets one, else this package's __pycache__
    folder = Path(config.CACHE_DIR) if config.CACHE_DIR else Path(__file__).parent / "__pycache__"
    path = folder / f"odfail-numba-nrt-{hashlib.sha1(key).hexdigest()[:16]}.bin"
    try:
        return codegen.unserialize_library(pickle.loads(path.read_bytes()))
    except Exception:  # absent, unreadable or stale: compile as numba does, keeping the machine code
        ir_module, library = _nrtdynmod.create_nrt_module(ctx)
        library.enable_object_caching()
        library.add_ir_module(ir_module)
        library.finalize()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps(library.serialize_using_object_code()))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only install: compile again next time
    return library


def _typeof_ndarray(val, c):
    """numba's ``_typeof_ndarray``, touching ``numpy.ma`` only for an ndarray subclass."""
    if type(val) is not np.ndarray:
        return _numba_typeof_ndarray(val, c)
    try:
        dtype = _typeof.numpy_support.from_dtype(val.dtype)
    except _typeof.errors.NumbaNotImplementedError:
        raise _typeof.errors.NumbaValueError(f"Unsupported array dtype: {val.dtype}") from None
    return _typeof.types.Array(dtype, val.ndim, _typeof.numpy_support.map_layout(val),
                               readonly=not val.flags.writeable)


_numba_typeof_ndarray = _typeof.typeof_impl.dispatch(np.ndarray)


def _rebuild_env(modname, consts, env_name):
    """numba's `environment._rebuild_env`, without importing ``modname`` when it is not imported yet."""
    env = _environment.lookup_environment(env_name)
    if env is not None:
        return env
    module = sys.modules.get(modname)
    env = _environment.Environment(module.__dict__ if module is not None else {"__name__": modname})
    env.consts[:] = consts
    env.env_name = env_name
    _environment.Environment._memo[env_name] = env
    return env


if os.environ.get("ODFAIL_NUMBA_FULL_REFRESH") != "1":
    if hasattr(_caching.Cache, "_load_overload"):
        _caching.Cache.load_overload = _load_overload
    if hasattr(_environment, "_rebuild_env") and hasattr(_environment.Environment, "_memo"):
        _environment._rebuild_env = _rebuild_env
    _nrtdynmod.compile_nrt_functions = _nrt_functions
    _typeof.typeof_impl.register(np.ndarray)(_typeof_ndarray)


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
