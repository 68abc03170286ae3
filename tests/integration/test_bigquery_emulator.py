"""The local BigQuery emulator through the official client: tables in, Arrow out, with the types the
offline engine relies on (skipped when scripts/tools/bqemulator.sh has not installed it)."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pytest

from tests.bigquery_emulator import PROJECT, bigquery_emulator, load_rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def client():
    with bigquery_emulator() as c:
        c.create_dataset("smoke")
        yield c


def test_loads_ndjson_and_streams_rows(client) -> None:
    from google.cloud import bigquery

    schema = [bigquery.SchemaField("order_id", "STRING"), bigquery.SchemaField("timestamp", "TIMESTAMP"),
              bigquery.SchemaField("quantity", "FLOAT64")]
    table = f"{PROJECT}.smoke.orders"
    rows = [{"order_id": f"o{i}", "timestamp": datetime(2024, 1, 1, 0, i % 60), "quantity": i / 2} for i in range(3000)]
    assert load_rows(client, table, schema, rows) == 3000
    assert load_rows(client, table, schema, rows[:10]) == 10  # WRITE_TRUNCATE: replaced, not appended
    assert not client.insert_rows_json(table, [{"order_id": "x", "timestamp": "2024-02-01 00:00:00", "quantity": 1.5}])
    got = client.query(f"SELECT COUNT(*) AS n, MAX(timestamp) AS last FROM `{table}`").result().to_arrow(
        create_bqstorage_client=False)
    assert got.column("n").to_pylist() == [11]
    assert got.column("last").to_pylist() == [datetime(2024, 2, 1, tzinfo=timezone.utc)]


def test_result_arrow_types(client) -> None:
    got = client.query(
        "SELECT TIMESTAMP '2024-01-02 03:04:05' AS ts, 1.5 AS f, 3 AS i, TRUE AS b, ['x'] AS strings, [2.5] AS floats, "
        "ARRAY_AGG(x * 0.5 ORDER BY x DESC) AS agg FROM UNNEST([1, 2]) AS x").to_arrow(create_bqstorage_client=False)
    types = {f.name: f.type for f in got.schema}
    assert types["ts"] == pa.timestamp("us", tz="UTC")
    assert types["f"] == pa.float64() and types["i"] == pa.int64() and types["b"] == pa.bool_()
    assert types["strings"].value_type == pa.string() and types["floats"].value_type == pa.float64()
    assert got.column("agg").to_pylist() == [[1.0, 0.5]]
