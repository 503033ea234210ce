"""A stage package that answers a call like its main function.

``odfail.ingest`` and ``odfail.evaluate`` are both the public API functions and the packages of those stages.
Python binds ``odfail.ingest`` to the package when it is first imported, whoever imports it (the CLI, a test,
``import odfail.ingest.scan``), which would hide the function. The package's module object is made callable, so
``odfail.ingest(ws, gt=...)`` runs the function whichever of the two the name holds.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable


def callable_stage(module_name: str, function: Callable) -> None:
    """Make ``sys.modules[module_name]`` call ``function`` when called."""

    class Stage(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return function(*args, **kwargs)

    Stage.__name__ = f"{function.__name__}_stage"
    sys.modules[module_name].__class__ = Stage
