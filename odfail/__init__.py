"""odfail: why does my object detector fail? COCO-exact evaluation, error analysis and SQL over predictions.

Heavy modules (duckdb, polars, pyarrow, numba) are imported inside the functions that use them, so that
``import odfail`` and the CLI start fast.
"""

from __future__ import annotations

from odfail.exceptions import InputError, WorkspaceError
from odfail.store.workspace import Workspace

__version__ = "0.1.0"
__all__ = ["Workspace", "ingest", "evaluate", "errors", "confusion", "report", "InputError", "WorkspaceError",
           "__version__"]


_FUNCTIONS = {"ingest": "odfail.ingest", "evaluate": "odfail.evaluate", "errors": "odfail.evaluate.tide",
              "confusion": "odfail.evaluate.confusion", "report": "odfail.report"}


def __getattr__(name: str):
    """The API functions, imported on first use. ``ingest``, ``evaluate`` and ``report`` are also the names of
    their stages' packages, and importing a package binds ``odfail.<name>`` to it whenever that happens first:
    those packages are callable (`odfail._stage.callable_stage`), so ``odfail.ingest(...)`` works either way."""
    if name not in _FUNCTIONS:
        raise AttributeError(name)
    import importlib

    function = getattr(importlib.import_module(_FUNCTIONS[name]), name)
    globals()[name] = function
    return function
