"""Store: the workspace, a folder of Parquet tables plus a DuckDB catalog whose views come from ``sql/views``.

Takes tables from ingest and the later stages (match tables, masks, metrics); gives connections and polars
results over the views, the table schemas, and the stored layout (`Workspace.table_path`). Every stage reads and
writes the workspace through here; the store imports no other stage.
"""

from odfail.store.workspace import DERIVED, DERIVED_PARQUET, PER_RUN, SCHEMAS, Workspace, WorkspaceInfo, quote, sql_dir

__all__ = ["DERIVED", "DERIVED_PARQUET", "PER_RUN", "SCHEMAS", "Workspace", "WorkspaceInfo", "quote", "sql_dir"]
