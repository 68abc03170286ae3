"""The one error type adapters raise for bad input: it names the file, the rows and the column."""

from __future__ import annotations


class DataError(ValueError):
    def __init__(self, message: str, *, file: str | None = None, column: str | None = None,
                 rows: list[int] | None = None) -> None:
        self.file, self.column, self.rows = file, column, rows or []
        where = []
        if file:
            where.append(f"file {file}")
        if rows:
            shown = ", ".join(str(r) for r in rows[:5])
            where.append(f"row{'s' if len(rows) > 1 else ''} {shown}{' …' if len(rows) > 5 else ''}")
        if column:
            where.append(f"column {column!r}")
        super().__init__(f"{message}" + (f" ({'; '.join(where)})" if where else ""))
