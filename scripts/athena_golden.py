#!/usr/bin/env python3
"""Runs the golden Athena statements (tests/golden/athena/) once on a real
Athena, to confirm that what the tests check offline is what Athena accepts.

    python scripts/athena_golden.py --lake s3://<lake bucket>/ \
        --workgroup silt --database silt_golden --region eu-west-1

The statements were recorded for the database `silt_shop` and the lake
`s3://example-lake/shop/`; they are rewritten for `--database` and `--lake`.
The raw tables come first, then each model's build in dependency order (a
model reading another's view runs after it), then the incremental runs, the
rebuilds and the upkeep. The raw data must already be in the lake's `raw/`
(see docs/first-deploy.md). Each statement is started, waited for and
reported; the exit code is 1 if any failed. Use a scratch database, made
first with `aws glue create-database --database-input Name=silt_golden`;
`aws glue delete-database --name silt_golden` removes its tables after (the
data under `curated/` stays until you delete it).

`--endpoint-url` points the client elsewhere (the tests run it against the
Athena stand-in, which fails what Athena's documented rules forbid).
"""

import argparse
import re
import sys
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests/golden/athena"
RECORDED_DB = "silt_shop"
RECORDED_LAKE = "s3://example-lake/shop/"
# The order the variants of a model's file run in.
PHASES = ["", ".incremental", ".rebuild", ".upkeep"]


def statements(path: Path) -> list[str]:
    text = path.read_text()
    first, _, rest = text.partition("\n")
    body = rest if first.startswith("-- ") else text
    return [s.strip().rstrip(";") for s in body.split(";\n\n") if s.strip().rstrip(";")]


def plan(golden: Path) -> list[Path]:
    """Raw tables, then every phase's files in the models' dependency order."""
    files = sorted(golden.glob("*.sql"))
    raw = [f for f in files if f.name.startswith("raw__")]
    models = {}
    for f in files:
        if f in raw:
            continue
        name, _, _ = f.name.removesuffix(".sql").partition(".")
        models.setdefault(name, []).append(f)
    deps = {}
    for name, fs in models.items():
        text = " ".join(s for f in fs for s in statements(f))
        deps[name] = {m for m in models if m != name and f'"{RECORDED_DB}"."{m}"' in text}
    order, done = [], set()
    while len(order) < len(models):
        ready = sorted(m for m in models if m not in done and deps[m] <= done)
        if not ready:
            raise SystemExit(f"athena_golden: a cycle among {sorted(set(models) - done)}")
        order.extend(ready)
        done.update(ready)
    out = list(raw)
    for phase in PHASES:
        out.extend(golden / f"{m}{phase}.sql" for m in order if (golden / f"{m}{phase}.sql").exists())
    return out


def rewrite(sql: str, database: str, lake: str) -> str:
    sql = sql.replace(RECORDED_LAKE, lake)
    return re.sub(rf'(?<![\w]){RECORDED_DB}(?![\w])', database, sql)


def run(client, sql: str, workgroup: str, database: str) -> tuple[str, str]:
    args = {"QueryString": sql, "WorkGroup": workgroup, "QueryExecutionContext": {"Database": database}}
    qid = client.start_query_execution(**args)["QueryExecutionId"]
    delay = 0.2
    while True:
        status = client.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
        if status["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return status["State"], status.get("StateChangeReason", "")
        time.sleep(delay)
        delay = min(delay * 2, 5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lake", required=True, help="s3://bucket/ the deployment's lake")
    ap.add_argument("--workgroup", required=True)
    ap.add_argument("--database", default="silt_golden")
    ap.add_argument("--region")
    ap.add_argument("--endpoint-url")
    ap.add_argument("--golden", default=str(GOLDEN), help=argparse.SUPPRESS)
    args = ap.parse_args()
    lake = args.lake if args.lake.endswith("/") else args.lake + "/"
    client = boto3.client("athena", region_name=args.region, endpoint_url=args.endpoint_url)
    failed = 0
    for path in plan(Path(args.golden)):
        for i, sql in enumerate(statements(path), 1):
            state, reason = run(client, rewrite(sql, args.database, lake), args.workgroup, args.database)
            print(f"{path.name} #{i}: {state}{' ' + reason if reason else ''}")
            failed += state != "SUCCEEDED"
    print(f"athena_golden: {failed} statement(s) failed" if failed else "athena_golden: every statement succeeded")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
