#!/usr/bin/env python3
"""Lambda runtime smoke test (`make lambda-smoke`).

Runs every function through the real Lambda Runtime API with cargo-lambda
(`cargo lambda watch` + `cargo lambda invoke --data-file events/...`), with
the functions pointed at a moto server on 127.0.0.1 (Athena at the tests'
stand-in, `tests/athena_stub.rs`), and checks what landed.
Everything it starts, it stops. Exits non-zero naming the first failed check.
"""

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools"
BUCKET = "silt-smoke"
PREFIX = "lake"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, seconds: float, proc: subprocess.Popen, what: str) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"smoke: {what} exited early with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    sys.exit(f"smoke: {what} did not listen on {port} within {seconds} s")


def check(cond: bool, message: str) -> None:
    if not cond:
        raise SystemExit(f"smoke: FAILED: {message}")
    print(f"smoke: ok: {message}")


class Smoke:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, args, **kw) -> subprocess.Popen:
        p = subprocess.Popen(args, **kw)
        self.procs.append(p)
        return p

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()

    def run(self) -> None:
        moto_port = free_port()
        moto = self.start([str(TOOLS / "moto/bin/moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(moto_port, 60, moto, "moto server")
        endpoint = f"http://127.0.0.1:{moto_port}"
        aws = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
        s3 = boto3.client("s3", **aws)
        sqs = boto3.client("sqs", **aws)
        # The PII key reaches ingest as the deployed stacks give it: an SSM SecureString.
        boto3.client("ssm", **aws).put_parameter(Name="/silt/pii-key", Value="smoke-only-key", Type="SecureString")
        s3.create_bucket(Bucket=BUCKET)
        landing = sqs.create_queue(QueueName="silt-landing")["QueueUrl"]
        transform = sqs.create_queue(QueueName="silt-transform")["QueueUrl"]
        s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={"QueueConfigurations": [{
            "QueueArn": "arn:aws:sqs:us-east-1:123456789012:silt-transform", "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": f"{PREFIX}/raw/"}, {"Name": "suffix", "Value": ".parquet"}]}}}]})
        s3.put_object(Bucket=BUCKET, Key="config/silt.toml", Body=(ROOT / "tests/smoke/silt.toml").read_bytes())
        for m in sorted((ROOT / "examples/shop/models").glob("*.sql")):
            s3.put_object(Bucket=BUCKET, Key=f"config/models/{m.name}", Body=m.read_bytes())

        # Athena: the tests' stand-in, which describes the columns an Iceberg
        # build asks for (moto describes none) and fails any statement that
        # breaks Athena's documented rules.
        stub = self.start(["cargo", "run", "-q", "-p", "silt-tests", "--bin", "athena-stub"],
                          cwd=ROOT, stdout=subprocess.PIPE, text=True)
        athena_endpoint = stub.stdout.readline().strip()
        if not athena_endpoint.startswith("http://127.0.0.1:"):
            sys.exit(f"smoke: the Athena stand-in did not start ({athena_endpoint!r})")
        env = dict(os.environ,
                   AWS_ENDPOINT_URL=endpoint, AWS_ENDPOINT_URL_ATHENA=athena_endpoint, AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1",
                   AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                   SILT_BUCKET=BUCKET, SILT_PREFIX=PREFIX,
                   SILT_PROJECT_CONFIG=f"s3://{BUCKET}/config/silt.toml", SILT_MODELS=f"s3://{BUCKET}/config/models/",
                   SILT_SOURCE="shop", SILT_LANDING_QUEUE_URL=landing, SILT_TRANSFORM_QUEUE_URL=transform,
                   SILT_ATHENA_OUTPUT=f"s3://{BUCKET}/athena-results/", SILT_PII_KEY_PARAMETER="/silt/pii-key", RUST_LOG="info",
                   PATH=f"{TOOLS / 'cargo-lambda/bin'}{os.pathsep}{os.environ.get('PATH', '')}")
        watch_port = free_port()
        log = open(TOOLS / "lambda-smoke-watch.log", "w")
        watch = self.start(["cargo", "lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port", str(watch_port)],
                           cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_port(watch_port, 120, watch, "cargo lambda watch")

        def invoke(name: str, data_file: Path) -> dict:
            # The first invoke of a function compiles it: allow for that.
            out = subprocess.run(["cargo", "lambda", "invoke", name, "--data-file", str(data_file),
                                  "--invoke-address", "127.0.0.1", "--invoke-port", str(watch_port), "--output-format", "json"],
                                 cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
            if out.returncode != 0:
                raise SystemExit(f"smoke: FAILED: invoke {name} {data_file.name}: {out.stderr.strip()[-2000:]}")
            return json.loads(out.stdout)

        def keys(prefix: str) -> list[str]:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/{prefix}")
            return sorted(o["Key"] for p in pages for o in p.get("Contents", []))

        def drain(url: str) -> list[dict]:
            got = []
            while True:
                r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
                msgs = r.get("Messages", [])
                if not msgs:
                    return got
                for m in msgs:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                got.extend(msgs)

        def sqs_event(msgs: list[dict], path: Path) -> Path:
            path.write_text(json.dumps({"Records": [{
                "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"], "attributes": {},
                "messageAttributes": {}, "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"} for m in msgs]}))
            return path

        tmp = Path(tempfile.mkdtemp(prefix="silt-smoke-"))
        # The invocation events written here are of this run only.
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        events = ROOT / "events"

        r = invoke("ingest", events / "sqs/ingest-debezium-batch.json")
        check(r == {"batchItemFailures": []}, "ingest: SQS batch with one malformed message needs no redelivery")
        check(len(keys("quarantine/ingest/shop/")) == 1, "ingest: the malformed message is quarantined with its reason")
        r = invoke("ingest", events / "dynamodb/stream-batch.json")
        check(r == {"batchItemFailures": []}, "ingest: DynamoDB Streams batch accepted")
        r = invoke("ingest", events / "kinesis/dms-batch.json")
        check(r == {"batchItemFailures": []}, "ingest: Kinesis batch of DMS records accepted")
        check(len(keys("quarantine/ingest/shop/")) == 2, "ingest: the Kinesis record that is not base64 is quarantined")
        landed_msgs = drain(landing)
        records = [json.loads(line) for m in landed_msgs for line in m["Body"].splitlines() if line.strip()]
        check(len(records) == 18, f"ingest: 9 Debezium + 3 DynamoDB + 6 DMS-over-Kinesis records reached the landing queue (got {len(records)})")

        land_event = sqs_event(landed_msgs, tmp / "land.json")
        r = invoke("land", land_event)
        check(r == {"batchItemFailures": []}, "land: batch landed")
        raw = keys("raw/")
        check(any("shop.public.orders" in k for k in raw) and any("shop.dynamodb.Orders" in k for k in raw), f"land: raw Parquet for both datasets ({len(raw)} objects)")
        check(len(keys("manifests/")) == len(raw), "land: one manifest per raw object")
        r = invoke("land", land_event)
        check(r == {"batchItemFailures": []} and keys("raw/") == raw, "land: the same batch again creates nothing")
        r = invoke("land", events / "sqs/land-batch.json")
        check(r == {"batchItemFailures": []}, "land: the landing-queue fixture lands")

        notes = drain(transform)
        check(any("ObjectCreated" in m["Body"] for m in notes), "transform: S3 notifications reached the transform queue")
        r = invoke("transform", sqs_event(notes, tmp / "transform.json"))
        check(r == {"batchItemFailures": []}, "transform: S3-notification batch handled")
        run = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/runs/transform/latest.json")["Body"].read())
        built = {m["model"]: m["status"] for m in run["models"]}
        check(built == {"order_changes_daily": "success", "orders_current": "success", "daily_revenue": "success"}, f"transform: models downstream of orders built on Athena ({built})")
        r = invoke("transform", events / "eventbridge/scheduled.json")
        statuses = {m["model"]: m["status"] for m in r["runs"][0]["models"]}
        check(r["runs"][0]["ok"] is True and not r["follow_ups"] and set(statuses.values()) <= {"success", "up_to_date", "no_data"},
              f"transform: nightly schedule ran every model ({statuses})")
        r = invoke("transform", events / "invoke/transform-select.json")
        check([m["model"] for m in r["runs"][0]["models"]] == ["orders_current", "daily_revenue"], "transform: direct invoke with a selector")
        r = invoke("transform", events / "invoke/transform-full-refresh.json")
        statuses = {m["model"]: m["status"] for m in r["runs"][0]["models"]}
        check(statuses.get("orders_current") == "success" and statuses.get("daily_revenue") == "success"
              and statuses.get("customers_current") == "no_data", f"transform: full refresh rebuilt every model with data ({statuses})")
        r = invoke("transform", events / "invoke/transform-backfill.json")
        check(r["runs"][0]["ok"] is True, "transform: backfill payload accepted")

        r = invoke("monitor", events / "eventbridge/scheduled.json")
        orders = next(d for d in r["datasets"] if d["dataset"] == "shop.public.orders")
        check(orders["landed_rows"] >= 9, "monitor: report counts landed rows")
        backfill = r["slis"].get("backfill") or {}
        check(backfill.get("run_id", "").endswith("-backfill") and backfill.get("ok") is True and backfill.get("duration_ms", -1) >= 0,
              f"monitor: reports the latest backfill's duration ({backfill})")
        check(keys("status/latest.json") == [f"{PREFIX}/status/latest.json"], "monitor: status document written")
        check(keys("monitor/history.json") == [f"{PREFIX}/monitor/history.json"], "monitor: check history written")
        r = invoke("monitor", events / "eventbridge/scheduled.json")
        slo = next(s for s in r["slos"] if s["dataset"] == "shop.public.orders")
        check(slo["checks"] == 2 and r["cost"]["by_model"], f"monitor: second check sees the first, and prices the models ({slo['checks']} checks)")
        print("smoke: all checks passed")


def main() -> None:
    smoke = Smoke()
    try:
        smoke.run()
    finally:
        smoke.stop()


if __name__ == "__main__":
    main()
