#!/usr/bin/env python3
"""Reads Parquet files with pyarrow and with DuckDB, for `tests/readback.rs`.

Silt writes its raw and curated files with parquet-rs; the readers its
users point at them are others (Athena/Trino, Spark, pyarrow, DuckDB,
Polars). This prints, for every file named on the command line, its rows
as each of two of those readers sees them, as one JSON document:

    {"<path>": {"pyarrow": [row, ...], "duckdb": [row, ...]}, ...}

Each row is an object of column name to value. Values are normalised the
same way the Rust test normalises parquet-rs's: integers and doubles as
JSON numbers (a double stays a double), text and booleans as themselves,
timestamps as RFC 3339 text in UTC with six fraction digits, dates as days since 1970-01-01,
decimals as their exact text at the column's scale, bytes as base64,
nulls as null. Anything else is an error, so a type neither side
expected cannot pass unseen.

Usage: readback.py FILE.parquet...
"""

import base64
import datetime
import decimal
import json
import sys

import duckdb
import pyarrow.parquet as pq

EPOCH_DATE = datetime.date(1970, 1, 1)


def normalise(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, datetime.date):
        return (value - EPOCH_DATE).days
    if isinstance(value, decimal.Decimal):
        # Positional, never `1E-7`: the exact digits at the column's scale.
        return format(value, "f")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"unexpected value {value!r} of type {type(value).__name__}")


def with_pyarrow(path):
    table = pq.read_table(path)
    return [
        {name: normalise(v) for name, v in row.items()} for row in table.to_pylist()
    ]


def with_duckdb(path):
    con = duckdb.connect()
    # Instants as UTC, whatever the machine's zone.
    con.execute("SET TimeZone = 'UTC'")
    # The file alone: its path's key=value folders are not columns of it.
    rel = con.execute("SELECT * FROM read_parquet(?, hive_partitioning = false)", [path])
    names = [d[0] for d in rel.description]
    return [
        {name: normalise(v) for name, v in zip(names, row)} for row in rel.fetchall()
    ]


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = {path: {"pyarrow": with_pyarrow(path), "duckdb": with_duckdb(path)} for path in sys.argv[1:]}
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
