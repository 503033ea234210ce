"""odfail: why does my object detector fail? COCO-exact evaluation, error analysis and SQL over predictions.

Heavy modules (duckdb, polars, pyarrow, numba) are imported inside the functions that use them, so that
``import odfail`` and the CLI start fast.
"""

from __future__ import annotations

from odfail.exceptions import InputError, WorkspaceError
from odfail.ingest import ingest
from odfail.workspace import Workspace

__version__ = "0.1.0"
__all__ = ["Workspace", "ingest", "evaluate", "errors", "confusion", "InputError", "WorkspaceError", "__version__"]


def __getattr__(name: str):
    # the functions, not the modules of the same name; imported on first use
    if name == "evaluate":
        from odfail.evaluate import evaluate

        return evaluate
    if name == "errors":
        from odfail.tide import errors

        return errors
    if name == "confusion":
        from odfail.confusion import confusion

        return confusion
    raise AttributeError(name)
