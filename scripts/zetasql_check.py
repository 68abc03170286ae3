"""Static GoogleSQL check: does BigQuery-dialect SQL resolve and type-check (ZetaSQL's own analyzer)?

The emulator runs BigQuery SQL on DuckDB and so accepts what DuckDB accepts (a TIMESTAMP column
compared with a DATETIME literal, say), which real BigQuery rejects. This runs Google's analyzer
(PyPI ``zetasql``: ZetaSQL compiled to WebAssembly, installed into .venv-bqemulator by
scripts/tools/bqemulator.sh) with every language feature on, against a catalog of the given tables.
An error here is an error on BigQuery too; passing is necessary, not sufficient (BigQuery enables a
subset of the features, and some of its limits are not the analyzer's, e.g. NULLS LAST in ARRAY_AGG).

Reads JSON on stdin, writes JSON on stdout (the first start takes a minute or two: wasm compile):
    {"tables": {"project.dataset.orders": [["order_id", "STRING"], ...], ...}, "queries": {"name": "SELECT ..."}}
 -> {"name": null | "error message", ...}
"""

from __future__ import annotations

import json
import sys

SKIP = ("SPANNER", "TEST", "DEPRECATED", "DISABLE_FLOAT32",
        # the reference analyzer cannot yet resolve analytic functions inside COALESCE/CASE under it
        "ENFORCE_CONDITIONAL_EVALUATION")
"""Language features left off: other products' dialects, and what the analyzer itself cannot do yet."""
TYPES = {"STRING": "TYPE_STRING", "TIMESTAMP": "TYPE_TIMESTAMP", "DATETIME": "TYPE_DATETIME", "DATE": "TYPE_DATE",
         "FLOAT64": "TYPE_DOUBLE", "INT64": "TYPE_INT64", "BOOL": "TYPE_BOOL"}


def main() -> int:
    from zetasql.core.local_service import ZetaSqlLocalService
    from zetasql.wasi._pb2.zetasql.local_service import local_service_pb2
    from zetasql.wasi._pb2.zetasql.proto import options_pb2, simple_catalog_pb2
    from zetasql.wasi._pb2.zetasql.public import options_pb2 as public_options
    from zetasql.wasi._pb2.zetasql.public import type_pb2

    request = json.load(sys.stdin)
    options = options_pb2.AnalyzerOptionsProto()
    language = options.language_options
    language.name_resolution_mode = public_options.NAME_RESOLUTION_DEFAULT
    language.product_mode = public_options.PRODUCT_EXTERNAL  # FLOAT64/INT64 only, as BigQuery
    for name in dir(public_options):
        value = getattr(public_options, name)
        if name.startswith("FEATURE_") and isinstance(value, int) and value > 0 and not any(w in name for w in SKIP):
            language.enabled_language_features.append(value)

    root = simple_catalog_pb2.SimpleCatalogProto(name="root")
    root.builtin_function_options.language_options.CopyFrom(language)
    for path, columns in request["tables"].items():
        *catalogs, table_name = path.split(".")
        node = root
        for part in catalogs:  # project, dataset: nested catalogs, as BigQuery resolves `p`.d.t
            found = [c for c in node.catalog if c.name == part]
            node = found[0] if found else node.catalog.add(name=part)
        table = node.table.add(name=table_name)
        for column, type_name in columns:
            table.column.add(name=column).type.type_kind = getattr(type_pb2, TYPES[type_name])

    service = ZetaSqlLocalService.get_instance() if hasattr(ZetaSqlLocalService, "get_instance") else ZetaSqlLocalService()
    out: dict[str, str | None] = {}
    for name, sql in request["queries"].items():
        analyze = local_service_pb2.AnalyzeRequest(sql_statement=sql, simple_catalog=root, options=options)
        try:
            service.wasm_client.call_grpc_func("ZetaSqlLocalService_Analyze", analyze, local_service_pb2.AnalyzeResponse)
            out[name] = None
        except Exception as exc:  # noqa: BLE001 - the service raises one kind per status
            out[name] = " ".join(str(exc).split())
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
