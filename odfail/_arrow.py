"""numpy -> Arrow without pyarrow's numpy conversion, which imports pandas when it is installed (0.2 s)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa


def column(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """A 1-D numpy array as an Arrow array over the same memory (a copy only if it is not contiguous);
    ``valid``: False where the value is null."""
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    n = values.size
    if values.dtype == np.bool_:
        typ, data = pa.bool_(), np.packbits(values, bitorder="little")
    else:
        typ, data = pa.from_numpy_dtype(values.dtype), values
    bitmap, nulls = None, 0
    if valid is not None and not valid.all():
        bitmap, nulls = pa.py_buffer(np.packbits(valid, bitorder="little")), n - int(np.count_nonzero(valid))
    return pa.Array.from_buffers(typ, n, [bitmap, pa.py_buffer(data)], null_count=nulls)


def constant(value: str, n: int) -> pa.Array:
    """``value`` n times, dictionary-encoded (one string, n zero indices)."""
    import pyarrow as pa

    encoded = value.encode()
    dictionary = pa.Array.from_buffers(pa.string(), 1, [None, pa.py_buffer(np.array([0, len(encoded)], np.int32)),
                                                        pa.py_buffer(encoded)])
    return pa.DictionaryArray.from_arrays(column(np.zeros(n, np.int32)), dictionary)
