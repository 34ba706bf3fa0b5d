#!/usr/bin/env python3
"""The yardstick `make bench` holds `silt run` against: the same Debezium
events landed as Parquet and turned into the same two current states by a
short script on DuckDB and pyarrow, the tools a data engineer would reach
for instead, used as they are fastest: DuckDB's own JSON reader, one SQL
statement per step.

It does the work Silt's local run does, without Silt's guarantees: reads
the JSON lines (with or without the `schema`/`payload` wrapper), skips
tombstones and truncates, hashes `email` (HMAC-SHA256, in Python: DuckDB
has no HMAC) and redacts `full_name` as the example project declares,
writes each table's changes as zstd Parquet, then keeps the newest change
per key (highest LSN), drops deletes and writes each current state as
Parquet. No quarantine, schema evolution, idempotent keys, manifests or
data tests.

Usage: pyarrow_duckdb.py EVENTS.jsonl OUT_DIR
Prints the seconds each step took and the rows of each current state.
"""

import hashlib
import hmac
import os
import sys
import time

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

KEY = b"bench-key"
KEYS = {"orders": "order_id", "customers": "customer_id"}
# The image's columns of each table, and how each is written.
COLUMNS = {
    "orders": "img.order_id, img.customer_id, img.status, img.amount_cents, img.currency, "
    "img.created_at, img.updated_at, img.note, to_json(img.items) AS items",
    "customers": "img.customer_id, img.email, "
    "CASE WHEN img.full_name IS NULL THEN NULL ELSE 'REDACTED' END AS full_name, "
    "img.country, img.created_at, img.updated_at",
}


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    con = duckdb.connect()
    # As many threads as the cores it may run on (`make bench` pins one).
    con.execute(f"SET threads = {len(os.sched_getaffinity(0))}")
    con.execute(
        f"""CREATE TABLE ev AS
        SELECT op, source.table AS tbl, lpad(CAST(source.lsn AS VARCHAR), 20, '0') AS _position,
               source.ts_ms AS _event_time, CASE WHEN op = 'd' THEN before ELSE after END AS img
        FROM (
            SELECT COALESCE(payload.op, op) AS op, COALESCE(payload.source, source) AS source,
                   COALESCE(payload.before, before) AS before, COALESCE(payload.after, after) AS after
            FROM read_json('{src}', format = 'newline_delimited')
        ) WHERE op IN ('c', 'u', 'd', 'r')"""
    )
    t1 = time.perf_counter()
    for table in KEYS:
        raw = con.execute(
            f"SELECT {COLUMNS[table]}, op AS _op, _position, _event_time FROM ev WHERE tbl = '{table}'"
        ).to_arrow_table()
        if table == "customers":
            emails = [
                None if e is None else hmac.new(KEY, e.encode(), hashlib.sha256).hexdigest()
                for e in raw.column("email").to_pylist()
            ]
            at = raw.schema.get_field_index("email")
            raw = raw.set_column(at, "email", pa.array(emails, pa.string()))
        pq.write_table(raw, os.path.join(out, f"raw_{table}.parquet"), compression="zstd")
    t2 = time.perf_counter()
    counts = {}
    for table, key in KEYS.items():
        raw = os.path.join(out, f"raw_{table}.parquet")
        cur = os.path.join(out, f"{table}_current.parquet")
        con.execute(
            f"""COPY (
                SELECT * EXCLUDE (_op, _rn) FROM (
                    SELECT *, ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY _position DESC) AS _rn
                    FROM read_parquet('{raw}')
                ) WHERE _rn = 1 AND _op <> 'd'
            ) TO '{cur}' (FORMAT PARQUET, COMPRESSION ZSTD)"""
        )
        counts[table] = con.execute(f"SELECT COUNT(*) FROM read_parquet('{cur}')").fetchone()[0]
    t3 = time.perf_counter()
    print(
        f"read (DuckDB read_json): {t1 - t0:.2f} s, mask and write Parquet: {t2 - t1:.2f} s, "
        f"current states (DuckDB): {t3 - t2:.2f} s"
    )
    print(f"total:         {t3 - t0:.2f} s  ({', '.join(f'{t} {n} rows' for t, n in counts.items())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
