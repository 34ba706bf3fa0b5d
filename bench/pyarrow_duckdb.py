#!/usr/bin/env python3
"""The yardstick `make bench` holds `silt run` against: the same Debezium
events landed as Parquet and turned into the same two current states by a
short script on pyarrow and DuckDB, the tools a data engineer would reach
for instead.

It does the work Silt's local run does, without Silt's guarantees: reads
the JSON lines (with or without the `schema`/`payload` wrapper), skips
tombstones, hashes `email` (HMAC-SHA256) and redacts `full_name` as the
example project declares, writes each table's changes as zstd Parquet,
then with DuckDB keeps the newest change per key (highest LSN), drops
deletes and writes each current state as Parquet. No quarantine, schema
evolution, idempotent keys, manifests or data tests.

Usage: pyarrow_duckdb.py EVENTS.jsonl OUT_DIR
Prints the seconds each step took and the rows of each current state.
"""

import hashlib
import hmac
import json
import os
import sys
import time

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

KEY = b"bench-key"
KEYS = {"orders": "order_id", "customers": "customer_id"}


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    rows = {t: [] for t in KEYS}
    with open(src, "rb") as f:
        for line in f:
            ev = json.loads(line)
            if ev is None:
                continue
            ev = ev.get("payload", ev) if "schema" in ev else ev
            if ev is None or ev.get("op") not in ("c", "u", "d", "r"):
                continue
            src_block = ev["source"]
            table = src_block["table"]
            image = ev["before"] if ev["op"] == "d" else ev["after"]
            row = dict(image)
            if table == "customers":
                if row.get("email") is not None:
                    row["email"] = hmac.new(KEY, row["email"].encode(), hashlib.sha256).hexdigest()
                if row.get("full_name") is not None:
                    row["full_name"] = "REDACTED"
            if table == "orders" and row.get("items") is not None:
                row["items"] = json.dumps(row["items"], separators=(",", ":"), sort_keys=True)
            row["_op"] = ev["op"]
            row["_position"] = "%020d" % src_block["lsn"]
            row["_event_time"] = src_block["ts_ms"]
            rows[table].append(row)
    t1 = time.perf_counter()
    for table, rs in rows.items():
        pq.write_table(pa.Table.from_pylist(rs), os.path.join(out, f"raw_{table}.parquet"), compression="zstd")
    t2 = time.perf_counter()
    con = duckdb.connect()
    # As many threads as the cores it may run on (`make bench` pins one).
    con.execute(f"SET threads = {len(os.sched_getaffinity(0))}")
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
    print(f"read and mask: {t1 - t0:.2f} s, write Parquet: {t2 - t1:.2f} s, current states (DuckDB): {t3 - t2:.2f} s")
    print(f"total:         {t3 - t0:.2f} s  ({', '.join(f'{t} {n} rows' for t, n in counts.items())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
