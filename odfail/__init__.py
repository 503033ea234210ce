"""odfail: why does my object detector fail? COCO-exact evaluation, error analysis and SQL over predictions.

Heavy modules (duckdb, polars, pyarrow, numba) are imported inside the functions that use them, so that
``import odfail`` and the CLI start fast.
"""

from __future__ import annotations

from odfail.exceptions import InputError, WorkspaceError
from odfail.workspace import Workspace

__version__ = "0.1.0"
__all__ = ["Workspace", "ingest", "evaluate", "errors", "confusion", "InputError", "WorkspaceError", "__version__"]


_FUNCTIONS = {"ingest": "odfail.ingest", "evaluate": "odfail.evaluate", "errors": "odfail.tide",
              "confusion": "odfail.confusion"}


def __getattr__(name: str):
    """The API functions, imported on first use. Importing a submodule binds the package attribute of the same
    name to the module (``odfail.evaluate`` the module); the function is bound over it, so it stays the function."""
    if name not in _FUNCTIONS:
        raise AttributeError(name)
    import importlib

    function = getattr(importlib.import_module(_FUNCTIONS[name]), name)
    globals()[name] = function
    return function
