"""The one exception users see for bad input: it names the file, the record and the field."""

from __future__ import annotations


class InputError(Exception):
    """Bad input: a file, a record in it, a field of that record, and what is wrong.

    The CLI prints ``str(err)`` as one line and exits with code 2; nothing in the workspace has changed.

    Example:
        >>> str(InputError("dt.json", "[12]", "bbox", "width -3.0 is negative"))
        'dt.json: [12], field "bbox": width -3.0 is negative'
    """

    def __init__(self, file: str, record: str | None, field: str | None, problem: str):
        self.file, self.record, self.field, self.problem = str(file), record, field, problem
        where = [self.file]
        if record is not None:
            where.append(f" {record}")
        if field is not None:
            where.append(f"{',' if record is not None else ''} field \"{field}\"")
        super().__init__(f"{where[0]}:{''.join(where[1:])}: {problem}" if len(where) > 1 else f"{where[0]}: {problem}")


class WorkspaceError(Exception):
    """The workspace cannot do what was asked (no GT yet, unknown run, catalog locked...)."""
