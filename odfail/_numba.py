"""numba, imported once for every kernel module: the kernels' flags, their cache, `borrowed`, and `load_cached`.

Caching, through numba's public settings only:

- Machine code for a generic CPU (``NUMBA_CPU_NAME=generic``, unless the user set it): the same on every
  x86-64 machine, so a wheel can carry the compiled kernels (``hatch_build.py`` compiles them when it is built)
  and a fresh install runs at once instead of compiling for minutes (docs/performance.md has the cost).
- numba checks a cached kernel against its own source file only; a kernel that inlines a helper from another
  file would keep the old helper. `sync_cache` hashes every kernel file together and drops this package's
  cached kernels when the hash changes.
- Where nothing is cached yet, the first kernel module says so on stderr, once a process.

`load_cached` reads the dispatcher's cache index, which numba does not document; where that differs in another
numba, it loads nothing and each kernel's first call loads or compiles it as numba always does.

Until 2026-12 this module also replaced four private numba functions to make loading cached kernels cheaper
(~0.18 s a process together, measured on a 5k ``odfail evaluate`` of ~0.55 s: no registry refresh 0.11 s,
stored runtime helpers 0.04 s, no module imports for inlined functions' environments 0.03 s, typeof without
``numpy.ma`` ~0). They were removed: start-up at that scale is not what users wait for, and each one could break
with any numba release (see docs/performance.md).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

if "numba" not in sys.modules:  # (numba reads its settings when it is imported)
    os.environ.setdefault("NUMBA_CPU_NAME", "generic")

import numba  # noqa: E402
from numba import njit, prange  # noqa: E402, F401  (re-exported for the kernel modules)
from numba.extending import intrinsic  # noqa: E402

PACKAGE = Path(__file__).resolve().parent
# Every file with kernels (and this one, whose flags they take): a kernel may inline a helper of any of them.
KERNEL_FILES = ("_numba.py", "_ids.py", "_json_kernels.py", "analysis/_kernels.py", "evaluate/_tide_kernels.py",
                "ingest/_order_kernels.py", "ingest/_record_kernels.py", "ingest/_scan_kernels.py",
                "ingest/_view_kernels.py", "match/_kernels.py", "match/_rle.py", "match/_seg_kernels.py",
                "match/_tide_kernels.py")
STAMP = PACKAGE / "__pycache__" / "odfail-kernels.stamp"


def kernels_stamp() -> str:
    """A hash of every kernel file, numba's version and the CPU the code is compiled for."""
    digest = hashlib.sha256(f"{numba.__version__} {os.environ.get('NUMBA_CPU_NAME')} {sys.version_info[:2]}".encode())
    for name in KERNEL_FILES:
        digest.update(name.encode() + b"\0" + (PACKAGE / name).read_bytes())
    return digest.hexdigest()


def _cached(name: str) -> list[Path]:
    path = PACKAGE / name
    return list((path.parent / "__pycache__").glob(f"{path.stem}.*.nb[ic]"))


def sync_cache() -> None:
    """Drop this package's cached kernels if any kernel file changed since they were compiled (numba would reuse a
    kernel whose inlined helper from another file changed), then record the stamp. A read-only install keeps
    what it has."""
    stamp = kernels_stamp()
    try:
        if STAMP.read_text() == stamp:
            return
    except OSError:
        pass
    try:
        for name in KERNEL_FILES:
            for path in _cached(name):
                path.unlink(missing_ok=True)
        STAMP.parent.mkdir(parents=True, exist_ok=True)
        tmp = STAMP.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(stamp)
        os.replace(tmp, STAMP)
    except OSError:
        pass


_announced = False


def announce(module_file: str) -> None:
    """Called by each kernel module when it is imported: if numba has nothing cached for it, say once per process
    that this run compiles (and where the result will be kept)."""
    global _announced
    path = Path(module_file)
    if _announced or list((path.parent / "__pycache__").glob(f"{path.stem}.*.nbi")):
        return
    _announced = True
    folder = path.parent / "__pycache__"
    if os.environ.get("NUMBA_CACHE_DIR"):
        where = f"in {os.environ['NUMBA_CACHE_DIR']} (NUMBA_CACHE_DIR)"
    elif os.access(path.parent, os.W_OK):
        where = f"beside the code, in {folder}"
    else:
        from numba.misc.appdirs import AppDirs

        where = (f"in numba's user cache, {AppDirs(appname='numba', appauthor=False).user_cache_dir} (odfail's "
                 f"folder {path.parent} is read-only; set NUMBA_CACHE_DIR to choose another)")
    print(f"odfail: compiling its kernels for this machine, once: ~20-70 s for a command's first run; later runs "
          f"load them {where}", file=sys.stderr, flush=True)


sync_cache()

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
