"""odfail: why does my object detector fail? COCO-exact evaluation, error analysis and SQL over predictions.

Heavy modules (duckdb, polars, pyarrow, numba) are imported inside the functions that use them, so that
``import odfail`` and the CLI start fast.
"""

from __future__ import annotations

from odfail.errors import InputError, WorkspaceError
from odfail.ingest import ingest
from odfail.workspace import Workspace

__version__ = "0.1.0"
__all__ = ["Workspace", "ingest", "evaluate", "InputError", "WorkspaceError", "__version__"]


def __getattr__(name: str):
    if name == "evaluate":  # the function, not the module of the same name
        from odfail.evaluate import evaluate

        return evaluate
    raise AttributeError(name)
