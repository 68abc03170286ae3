"""The offline engine at scale: the same feature SQL, transpiled by sqlglot, run on BigQuery.

Talks to BigQuery with the official ``google-cloud-bigquery`` client: ambient Google credentials in the
cluster, or any endpoint that speaks the BigQuery REST API (``endpoint``: the local emulator the
integration test runs). Small tables the snapshot needs (requests, moments) are loaded as newline-delimited JSON into the same
dataset, next to the canonical tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from voicecart.features.errors import FeatureStoreUnavailable
from voicecart.features.offline import FEEDBACK_SCHEMA, FEEDBACK_TABLE, feedback_sql, normalize
from voicecart.features.sql import to_bigquery

if TYPE_CHECKING:
    from google.cloud import bigquery

    from voicecart.config import BigQueryOffline

_TYPES = {  # Arrow type -> BigQuery column type of the small tables we write
    "string": "STRING", "large_string": "STRING", "bool": "BOOL", "int64": "INT64", "int32": "INT64",
    "double": "FLOAT64", "float": "FLOAT64",
}


class BigQueryEngine:
    """Feature SQL on a BigQuery dataset (``project.dataset``)."""

    name = "bigquery"

    def __init__(self, client: "bigquery.Client", project: str, dataset: str) -> None:
        self.client = client
        self.project = project
        self.dataset = dataset

    @classmethod
    def from_config(cls, config: "BigQueryOffline") -> "BigQueryEngine":
        from google.cloud import bigquery

        kwargs: dict[str, Any] = {"project": config.project}
        if config.endpoint:
            from google.api_core.client_options import ClientOptions
            from google.auth.credentials import AnonymousCredentials

            kwargs |= {"credentials": AnonymousCredentials(), "client_options": ClientOptions(api_endpoint=config.endpoint)}
        if config.location:
            kwargs["location"] = config.location
        return cls(bigquery.Client(**kwargs), config.project, config.dataset)

    @property
    def qualified(self) -> str:
        return f"{self.project}.{self.dataset}"

    def query(self, sql: str) -> pa.Table:
        text = to_bigquery(sql, self.qualified)
        try:
            table = self.client.query(text).result().to_arrow(create_bqstorage_client=False)
        except Exception as exc:  # noqa: BLE001 - google.api_core raises many kinds
            raise FeatureStoreUnavailable(f"BigQuery query failed on {self.qualified}: {type(exc).__name__}: {exc}") from None
        return normalize(table)

    def feedback_table(self, deadline_s: float = 600.0) -> str:
        """The dataset's one feedback table (``project.dataset.feedback_events``), created empty when missing;
        retried for at most ``deadline_s`` (the client's default: 10 minutes)."""
        from google.cloud import bigquery

        ref = f"{self.qualified}.{FEEDBACK_TABLE}"
        schema = [bigquery.SchemaField(f.name, _bq_type(f.type), mode="NULLABLE" if f.nullable else "REQUIRED")
                  for f in FEEDBACK_SCHEMA]
        self.client.create_table(bigquery.Table(ref, schema=schema), exists_ok=True,
                                 retry=bigquery.DEFAULT_RETRY.with_timeout(deadline_s), timeout=deadline_s)
        return ref

    def feedback(self, start: str, end: str) -> pa.Table:
        try:
            self.feedback_table()  # a first run, before any event reached it, reads an empty table
        except Exception as exc:  # noqa: BLE001
            raise FeatureStoreUnavailable(f"BigQuery feedback table unreachable: {type(exc).__name__}: {exc}") from None
        return self.query(feedback_sql(start, end))

    def put(self, name: str, table: pa.Table) -> None:
        """Replace table ``name`` in the dataset with ``table`` (requests, moments, a window's canonical tables)."""
        from google.cloud import bigquery

        schema = [bigquery.SchemaField(f.name, _bq_type(f.type), mode="REPEATED" if pa.types.is_list(f.type) else "NULLABLE")
                  for f in table.schema]
        try:
            load_json_rows(self.client, f"{self.qualified}.{name}", schema, table.to_pylist())
        except Exception as exc:  # noqa: BLE001
            raise FeatureStoreUnavailable(f"BigQuery refused table {self.qualified}.{name}: {type(exc).__name__}: "
                                          f"{exc}") from None


def load_json_rows(client: "bigquery.Client", table: str, schema: list, rows: Iterable[dict]) -> int:
    """Replace ``table`` with ``rows``: one newline-delimited JSON load job (WRITE_TRUNCATE), uploaded
    resumably — a fresh table takes no streaming buffer, and the local emulator accepts this upload (it
    refuses the multipart one the client sends when told the size). Rows loaded."""
    import io
    import json

    from google.cloud import bigquery

    data = "".join(json.dumps(_json_row(r)) + "\n" for r in rows).encode()
    config = bigquery.LoadJobConfig(schema=schema, source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
                                    write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE)
    job = client.load_table_from_file(io.BytesIO(data), table, job_config=config)  # no size=: resumable
    job.result()
    return int(job.output_rows or 0)


def _bq_type(t: pa.DataType) -> str:
    if pa.types.is_list(t):
        return _bq_type(t.value_type)
    if pa.types.is_timestamp(t):
        return "TIMESTAMP"
    if pa.types.is_date(t):
        return "DATE"
    return _TYPES.get(str(t), "STRING")


def _json_row(row: dict) -> dict:
    return {k: _json_value(v) for k, v in row.items()}


def _json_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    return v


def upload_tables(engine: BigQueryEngine, tables: Iterable[tuple[str, pa.Table]]) -> dict[str, int]:
    """Write canonical tables (name, Arrow) into the engine's dataset; rows written per table."""
    written = {}
    for name, table in tables:
        engine.put(name, table)
        written[name] = table.num_rows
    return written


PROVIDER = "gcp"


def feast_config(config: "BigQueryOffline") -> dict[str, Any]:
    return {"type": "bigquery", "project_id": config.project, "dataset": config.dataset}


def feast_tables(config: "BigQueryOffline", store_dir):  # noqa: ANN001, ANN201 - definitions.BigQueryTables
    from voicecart.features.definitions import BigQueryTables

    return BigQueryTables(config.project, config.dataset)


def engine(config: "BigQueryOffline", dataset=None, store_dir=None) -> BigQueryEngine:  # noqa: ANN001 - in BigQuery
    return BigQueryEngine.from_config(config)


class BigQueryFeedbackSink:
    """Feedback events into the dataset's one ``feedback_events`` table, from every intake replica: each batch
    is loaded into its own staging table, then inserted where its ``event_id`` is not in the table yet.

    An unreachable warehouse fails the write within ``deadline_s`` (not the client's 10-minute retry): the
    intake keeps the events in its WAL and the next flush tries again."""

    def __init__(self, engine: BigQueryEngine, deadline_s: float = 30.0) -> None:
        self.engine = engine
        self.deadline_s = deadline_s

    def write(self, rows: pa.Table) -> int:
        import uuid

        if rows.num_rows == 0:
            return 0
        try:
            ref = self.engine.feedback_table(self.deadline_s)
        except Exception as exc:  # noqa: BLE001
            raise FeatureStoreUnavailable(f"BigQuery feedback table unreachable: {type(exc).__name__}: {exc}") from None
        staging = f"{FEEDBACK_TABLE}_staging_{uuid.uuid4().hex[:12]}"
        self.engine.put(staging, rows.cast(FEEDBACK_SCHEMA))
        names = ", ".join(FEEDBACK_SCHEMA.names)
        try:
            self.engine.client.query(
                f"INSERT INTO `{ref}` ({names}) SELECT {names} FROM `{self.engine.qualified}.{staging}` AS s "
                f"WHERE s.event_id NOT IN (SELECT event_id FROM `{ref}`)").result()
        except Exception as exc:  # noqa: BLE001
            raise FeatureStoreUnavailable(f"BigQuery feedback insert failed: {type(exc).__name__}: {exc}") from None
        finally:
            self.engine.client.delete_table(f"{self.engine.qualified}.{staging}", not_found_ok=True)
        return rows.num_rows


def feedback_sink(config: "BigQueryOffline", store_dir=None) -> BigQueryFeedbackSink:  # noqa: ANN001
    return BigQueryFeedbackSink(BigQueryEngine.from_config(config))
