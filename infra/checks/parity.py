#!/usr/bin/env python3
"""Parity between infra/terraform and infra/sam (`make infra-check`).

Both templates must describe the same deployment: functions (memory,
timeout, concurrency reserved only on request, off by default), queues and their dead-letter queues, event sources
(queue, batch size, batching window, partial-batch responses), the optional
stream sources of ingest (Kinesis and DynamoDB Streams: starting position,
batching, retries, bisection, the on-failure queue, and the actions their
role policy grants on the stream), schedules,
alarms (namespace and metric, with their counts, and the runbook each links)
and, per function, the IAM actions its role grants. Every alarm must link a
runbook under docs/runbooks/ that exists, and every runbook must be linked
by an alarm. Any difference is printed and the exit code is 1.

Each template is also checked against the quotas and rules a new account
deploys under (docs/aws-limits.md): no concurrency reserved by default, and
when reservation is asked for, the account limit it needs; SQS visibility
timeouts of at least six times the consuming function's timeout, dead-letter
queues keeping messages longer than their source; event source batch sizes
and windows within Lambda's limits (streams: retries and record ages
within the API's ranges, discarded batches recorded in a dead-letter
queue); schedules EventBridge accepts; a bounded
number of kept builds per model, so Glue's tables per database stay bounded.
The KMS key policy's statements for service principals must match between
the templates and take the form each service documents (CloudWatch Logs by
the log group in the encryption context, S3 by its source bucket).

`--self-test` also checks that the comparison notices a function, queue,
schedule, alarm or permission present in only one template, and that each
limit rule notices a template breaking it.
"""

import copy
import re
import sys
from collections import Counter
from pathlib import Path

import hcl2
import yaml

ROOT = Path(__file__).resolve().parents[2]
TF_DIR = ROOT / "infra/terraform/modules/silt"
SAM = ROOT / "infra/sam/template.yaml"
# Actions AWS offers no resource-level permission for: "*" is the narrowest resource.
UNSCOPED = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
RUNBOOKS = ROOT / "docs/runbooks"
# Quotas and hard limits (docs/aws-limits.md has the references).
NEW_ACCOUNT_CONCURRENCY = 10
UNRESERVED_MINIMUM = 100
MAX_TIMEOUT_S = 900
MAX_MEMORY_MB = 10240
SQS_MAX_VISIBILITY_S = 43200
BATCH_WITHOUT_WINDOW = 10
BATCH_WITH_WINDOW = 10000
MAX_BATCHING_WINDOW_S = 300
STREAM_MAX_BATCH = 10000
STREAM_MAX_RETRIES = 10000
STREAM_MAX_RECORD_AGE_S = 604800
STREAM_KINDS = ("kinesis", "dynamodb")
RULES_PER_BUS = 300
MAX_KEEP_BUILDS = 10
SCHEDULE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)|cron\((\S+ ){5}\S+\)")
RUNBOOK_LINK = re.compile(r"Runbook: (docs/runbooks/[\w.-]+\.md)")


def runbook_of(description: str) -> str:
    m = RUNBOOK_LINK.search(description or "")
    return m.group(1) if m else ""


# ---- Terraform --------------------------------------------------------------

def unquote_keys(v):
    # python-hcl2 keeps the quotes of block labels ("\"name\""); drop them.
    if isinstance(v, dict):
        return {unquote(k): unquote_keys(x) for k, x in v.items()}
    if isinstance(v, list):
        return [unquote_keys(x) for x in v]
    return v


def load_tf() -> dict:
    merged: dict = {}
    for f in sorted(TF_DIR.glob("*.tf")):
        with open(f) as fh:
            doc = unquote_keys(hcl2.load(fh))
        for block, items in doc.items():
            merged.setdefault(block, []).extend(items)
    return merged


def unquote(v):
    if isinstance(v, str) and len(v) >= 2 and v[0] == v[-1] == '"':
        return v[1:-1]
    return v


def tf_model(tf: dict) -> dict:
    variables = {}
    for v in tf.get("variable", []):
        for name, body in v.items():
            variables[name] = body.get("default")
    locals_ = {}
    for l in tf.get("locals", []):
        locals_.update(l)

    def resolve(v):
        v = unquote(v)
        if isinstance(v, str):
            m = re.fullmatch(r"\$\{var\.(\w+)\}", v)
            if m:
                return unquote(variables[m.group(1)])
        return v

    resources: dict = {}
    for r in tf.get("resource", []):
        for rtype, named in r.items():
            for name, body in named.items():
                resources.setdefault(rtype, {})[name] = body
    data: dict = {}
    for d in tf.get("data", []):
        for dtype, named in d.items():
            for name, body in named.items():
                data.setdefault(dtype, {})[name] = body

    functions = {k: {"memory": int(v["memory"]), "timeout": int(v["timeout"]), "concurrency": int(v["concurrency"])}
                 for k, v in variables["functions"].items()}
    queue_keys = set(unquote(k) for k in locals_["queues"].keys())
    queues = queue_keys | {f"{q}-dlq" for q in queue_keys}

    def key_of(expr: str, kind: str) -> str:
        m = re.search(kind + r'\[\\?"(\w+)\\?"\]', expr)
        if not m:
            raise SystemExit(f"parity: cannot read {kind} key from {expr}")
        return m.group(1)

    sources, streams = {}, {}
    read_actions = {k: sorted(unquote(a) for a in v) for k, v in locals_.get("stream_read_actions", {}).items()}
    for name, body in resources.get("aws_lambda_event_source_mapping", {}).items():
        fn = key_of(body["function_name"], "aws_lambda_function.fn")
        if body.get("for_each") == "${local.stream_sources}":
            on_failure = body["destination_config"][0]["on_failure"][0]["destination_arn"]
            for kind in read_actions:
                streams[(fn, kind)] = {
                    "starting_position": unquote(body["starting_position"]),
                    "batch_size": int(body["batch_size"]),
                    "window": int(body["maximum_batching_window_in_seconds"]),
                    "bisect": bool(body["bisect_batch_on_function_error"]),
                    "retries": int(body["maximum_retry_attempts"]),
                    "max_record_age": int(body["maximum_record_age_in_seconds"]),
                    "responses": sorted(unquote(x) for x in body.get("function_response_types", [])),
                    "on_failure": key_of(on_failure, "aws_sqs_queue.dlq") + "-dlq",
                }
            continue
        q = key_of(body["event_source_arn"], "aws_sqs_queue.queue")
        sources[(fn, q)] = {
            "batch_size": int(resolve(body.get("batch_size", 10))),
            "window": int(resolve(body.get("maximum_batching_window_in_seconds", 0))),
            "responses": sorted(unquote(x) for x in body.get("function_response_types", [])),
        }

    schedules = {}
    rules = resources.get("aws_cloudwatch_event_rule", {})
    for name, body in resources.get("aws_cloudwatch_event_target", {}).items():
        fn = key_of(body["arn"], "aws_lambda_function.fn")
        rule = re.search(r"aws_cloudwatch_event_rule\.(\w+)\.name", body["rule"]).group(1)
        schedules[fn] = resolve(rules[rule]["schedule_expression"])

    alarms = Counter()
    runbooks = {}
    for name, body in resources.get("aws_cloudwatch_metric_alarm", {}).items():
        each = body.get("for_each")
        count = 1
        if each == "${var.functions}":
            count = len(functions)
        elif each == "${local.queues}":
            count = len(queue_keys)
        elif each is not None:
            raise SystemExit(f"parity: unknown for_each {each} on alarm {name}")
        elif body.get("count") == "${length(local.stream_sources) > 0 ? 1 : 0}":
            count = 1  # present when ingest reads a stream, as SAM's ReadStream condition
        key = (unquote(body["namespace"]), unquote(body["metric_name"]))
        alarms[key] += count
        runbooks.setdefault(key, set()).add(runbook_of(unquote(body.get("alarm_description", ""))))

    iam, wide = {}, []
    docs = data.get("aws_iam_policy_document", {})
    for fn in functions:
        actions = set()
        for st in docs[fn].get("statement", []):
            acts = [unquote(a) for a in st.get("actions", [])]
            actions.update(acts)
            if "*" in [unquote(r) for r in st.get("resources", [])] and not all(a in UNSCOPED for a in acts):
                wide.append(f"{fn}: {acts} on every resource")
        iam[fn] = actions
    stream_iam = {}
    if "ingest_stream" in docs:
        for kind, actions in read_actions.items():
            granted = set()
            for st in docs["ingest_stream"].get("statement", []):
                acts = st["actions"]
                if acts == "${local.stream_read_actions[each.key]}":
                    granted.update(actions)
                    if st.get("resources") != ["${each.value}"]:
                        wide.append(f"ingest: reads {kind} on {st.get('resources')}, not the one stream")
                else:
                    granted.update(unquote(a) for a in acts)
            stream_iam[kind] = granted
    reserve = {"default": bool(variables["reserve_concurrency"])}
    queue_attrs = {}
    for key, body in locals_["queues"].items():
        m = re.fullmatch(r'\$\{(\d+) \* var\.functions\["(\w+)"\]\.timeout\}', body["visibility"])
        if not m:
            raise SystemExit(f"parity: cannot read the visibility of queue {key}: {body['visibility']}")
        queue_attrs[unquote(key)] = {
            "visibility": int(m.group(1)) * functions[m.group(2)]["timeout"],
            "retention": int(resolve(resources["aws_sqs_queue"]["queue"]["message_retention_seconds"])),
            "dlq_retention": int(resolve(resources["aws_sqs_queue"]["dlq"]["message_retention_seconds"])),
        }
    keep = {}
    for v in tf.get("variable", []):
        if "keep_builds" in v:
            for val in v["keep_builds"].get("validation", []):
                m = re.search(r"var\.keep_builds >= (\d+) && var\.keep_builds <= (\d+)", val.get("condition", ""))
                if m:
                    keep = {"min": int(m.group(1)), "max": int(m.group(2))}
    for name, body in resources.get("aws_lambda_function", {}).items():
        if body.get("reserved_concurrent_executions") != "${var.reserve_concurrency ? each.value.concurrency : -1}":
            raise SystemExit(f"parity: Terraform {name} reserves concurrency unconditionally")
    return {"functions": functions, "queues": queues, "event_sources": sources, "streams": streams,
            "stream_iam": stream_iam, "schedules": schedules,
            "alarms": dict(alarms), "runbooks": runbooks, "iam": iam, "wide": wide, "reserve": reserve,
            "queue_attrs": queue_attrs, "keep_builds": keep,
            "rules": len(resources.get("aws_cloudwatch_event_rule", {}))}


# ---- SAM --------------------------------------------------------------------

class CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader, tag_suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)


def sam_model(doc: dict) -> dict:
    params = {k: v.get("Default") for k, v in doc.get("Parameters", {}).items()}
    res = doc["Resources"]

    def resolve(v):
        if isinstance(v, dict) and "Ref" in v and v["Ref"] in params:
            return params[v["Ref"]]
        return v

    def sub_suffix(v) -> str:
        text = v["Fn::Sub"] if isinstance(v, dict) else v
        return text.replace("${Name}-", "")

    queue_names = {lid: sub_suffix(r["Properties"]["QueueName"]) for lid, r in res.items() if r["Type"] == "AWS::SQS::Queue"}

    def reserved(fn: str, p: dict) -> int:
        # Reserved only on request: !If [Reserve, N, !Ref AWS::NoValue].
        r = p.get("ReservedConcurrentExecutions")
        if not (isinstance(r, dict) and r.get("Fn::If", [None])[0] == "Reserve"
                and r["Fn::If"][2] == {"Ref": "AWS::NoValue"}):
            raise SystemExit(f"parity: SAM {fn} reserves concurrency unconditionally: {r}")
        return int(r["Fn::If"][1])
    functions, sources, schedules, iam = {}, {}, {}, {}
    role_of = {}
    for lid, r in res.items():
        if r["Type"] != "AWS::Serverless::Function":
            continue
        p = r["Properties"]
        fn = sub_suffix(p["FunctionName"])
        functions[fn] = {"memory": int(p["MemorySize"]), "timeout": int(p["Timeout"]), "concurrency": reserved(fn, p)}
        role_of[p["Role"]["Fn::GetAtt"].split(".")[0] if isinstance(p["Role"]["Fn::GetAtt"], str) else p["Role"]["Fn::GetAtt"][0]] = fn
        for ev in p.get("Events", {}).values():
            ep = ev["Properties"]
            if ev["Type"] == "SQS":
                ref = ep["Queue"]["Fn::GetAtt"]
                qlid = ref.split(".")[0] if isinstance(ref, str) else ref[0]
                sources[(fn, queue_names[qlid])] = {
                    "batch_size": int(resolve(ep.get("BatchSize", 10))),
                    "window": int(resolve(ep.get("MaximumBatchingWindowInSeconds", 0))),
                    "responses": sorted(ep.get("FunctionResponseTypes", [])),
                }
            elif ev["Type"] == "Schedule":
                schedules[fn] = resolve(ep["Schedule"])
    wide = []
    for lid, fn in role_of.items():
        actions = set()
        for pol in res[lid]["Properties"].get("Policies", []):
            for st in pol["PolicyDocument"]["Statement"]:
                a = st["Action"]
                acts = [a] if isinstance(a, str) else a
                actions.update(acts)
                r = st["Resource"]
                if "*" in ([r] if isinstance(r, str) else r) and not all(x in UNSCOPED for x in acts):
                    wide.append(f"{fn}: {acts} on every resource")
        iam[fn] = actions
    alarms = Counter()
    runbooks = {}
    for r in res.values():
        if r["Type"] == "AWS::CloudWatch::Alarm":
            key = (r["Properties"]["Namespace"], r["Properties"]["MetricName"])
            alarms[key] += 1
            runbooks.setdefault(key, set()).add(runbook_of(r["Properties"].get("AlarmDescription", "")))
    streams, stream_iam = {}, {}
    # Each optional stream source: a mapping and a role policy under the condition of its ARN parameter.
    kind_of = {"KinesisStreamArn": "kinesis", "DynamoDbStreamArn": "dynamodb"}
    fn_of = {lid: sub_suffix(r["Properties"]["FunctionName"]) for lid, r in res.items() if r["Type"] == "AWS::Serverless::Function"}
    for lid, r in res.items():
        p = r["Properties"]
        if r["Type"] == "AWS::Lambda::EventSourceMapping":
            kind = kind_of[p["EventSourceArn"]["Ref"]]
            dest = p["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"]
            dest_lid = dest.split(".")[0] if isinstance(dest, str) else dest[0]
            streams[(fn_of[p["FunctionName"]["Ref"]], kind)] = {
                "starting_position": p["StartingPosition"],
                "batch_size": int(p["BatchSize"]),
                "window": int(p.get("MaximumBatchingWindowInSeconds", 0)),
                "bisect": bool(p["BisectBatchOnFunctionError"]),
                "retries": int(p["MaximumRetryAttempts"]),
                "max_record_age": int(p["MaximumRecordAgeInSeconds"]),
                "responses": sorted(p.get("FunctionResponseTypes", [])),
                "on_failure": queue_names[dest_lid],
            }
        elif r["Type"] == "AWS::IAM::RolePolicy":
            granted = set()
            for st in p["PolicyDocument"]["Statement"]:
                a = st["Action"]
                acts = [a] if isinstance(a, str) else a
                granted.update(acts)
                if any(x.split(":")[0] in STREAM_KINDS for x in acts) and st["Resource"] not in [{"Ref": k} for k in kind_of]:
                    wide.append(f"ingest: reads a stream on {st['Resource']}, not the one stream")
            stream_iam[kind_of_policy(p, kind_of)] = granted
    reserve = {"default": params["ReserveConcurrency"] == "true"}
    dlq_of = {lid: r["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"]
              for lid, r in res.items() if r["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in r["Properties"]}
    queue_attrs = {}
    for lid, dlq in dlq_of.items():
        dlq_lid = dlq.split(".")[0] if isinstance(dlq, str) else dlq[0]
        p = res[lid]["Properties"]
        queue_attrs[queue_names[lid]] = {
            "visibility": int(p["VisibilityTimeout"]),
            "retention": int(p["MessageRetentionPeriod"]),
            "dlq_retention": int(res[dlq_lid]["Properties"]["MessageRetentionPeriod"]),
        }
    kb = doc["Parameters"]["KeepBuilds"]
    keep = {"min": int(kb["MinValue"]), "max": int(kb["MaxValue"])} if "MaxValue" in kb and "MinValue" in kb else {}
    rules = sum(1 for r in res.values() if r["Type"] == "AWS::Events::Rule") + sum(
        1 for r in res.values() if r["Type"] == "AWS::Serverless::Function"
        for ev in r["Properties"].get("Events", {}).values() if ev["Type"] == "Schedule")
    return {"queue_attrs": queue_attrs, "keep_builds": keep, "rules": rules,"functions": functions, "queues": set(queue_names.values()), "event_sources": sources,
            "schedules": schedules, "alarms": dict(alarms), "runbooks": runbooks, "iam": iam, "wide": wide,
            "reserve": reserve, "streams": streams, "stream_iam": stream_iam}


def kind_of_policy(p: dict, kind_of: dict) -> str:
    """The stream a SAM role policy is for: the ARN parameter its statements name."""
    for st in p["PolicyDocument"]["Statement"]:
        if isinstance(st["Resource"], dict) and st["Resource"].get("Ref") in kind_of:
            return kind_of[st["Resource"]["Ref"]]
    raise SystemExit(f"parity: SAM role policy {p.get('PolicyName')} names no stream")


# ---- comparison ---------------------------------------------------------------

def limits(model: dict, where: str) -> list[str]:
    """What a new account would refuse, or a quota a year of runs would reach."""
    problems = []
    reserved = sum(f["concurrency"] for f in model["functions"].values())
    if reserved + UNRESERVED_MINIMUM > 1000:
        problems.append(f"limits ({where}): reservation asks {reserved}, more than a default account (1,000) can give")
    for fn, f in model["functions"].items():
        if f["timeout"] > MAX_TIMEOUT_S or f["memory"] > MAX_MEMORY_MB:
            problems.append(f"limits ({where}): {fn} asks {f['memory']} MB for {f['timeout']} s, beyond Lambda's limits")
    for (fn, q), src in model["event_sources"].items():
        most = BATCH_WITH_WINDOW if src["window"] > 0 else BATCH_WITHOUT_WINDOW
        if src["batch_size"] > most or src["window"] > MAX_BATCHING_WINDOW_S:
            problems.append(f"limits ({where}): {fn} reads {q} in batches of {src['batch_size']} over {src['window']} s; "
                            f"Lambda allows {most} (and a window of {MAX_BATCHING_WINDOW_S} s at most)")
        attrs = model["queue_attrs"].get(q)
        if attrs is None:
            problems.append(f"limits ({where}): queue {q} has no dead-letter queue")
            continue
        timeout = model["functions"][fn]["timeout"]
        if not 6 * timeout <= attrs["visibility"] <= SQS_MAX_VISIBILITY_S:
            problems.append(f"limits ({where}): {q}'s visibility timeout {attrs['visibility']} s is not six times "
                            f"{fn}'s timeout ({timeout} s), up to {SQS_MAX_VISIBILITY_S}")
        if attrs["dlq_retention"] <= attrs["retention"]:
            problems.append(f"limits ({where}): {q}'s dead-letter queue keeps messages no longer than {q} "
                            f"({attrs['dlq_retention']} <= {attrs['retention']} s): redriven messages expire on arrival")
    for (fn, kind), src in model["streams"].items():
        if not 1 <= src["batch_size"] <= STREAM_MAX_BATCH or not 0 <= src["window"] <= MAX_BATCHING_WINDOW_S:
            problems.append(f"limits ({where}): {fn} reads its {kind} stream in batches of {src['batch_size']} over "
                            f"{src['window']} s; Lambda allows {STREAM_MAX_BATCH} and {MAX_BATCHING_WINDOW_S} s")
        if not -1 <= src["retries"] <= STREAM_MAX_RETRIES:
            problems.append(f"limits ({where}): {fn}'s {kind} source retries {src['retries']} times; Lambda takes -1 to {STREAM_MAX_RETRIES}")
        if not (src["max_record_age"] == -1 or 60 <= src["max_record_age"] <= STREAM_MAX_RECORD_AGE_S):
            problems.append(f"limits ({where}): {fn}'s {kind} source keeps records {src['max_record_age']} s; "
                            f"Lambda takes -1 or 60 to {STREAM_MAX_RECORD_AGE_S}")
        if src["starting_position"] != "TRIM_HORIZON":
            problems.append(f"limits ({where}): {fn}'s {kind} source starts at {src['starting_position']}: "
                            "a first deploy would skip the changes the stream already holds")
        if "ReportBatchItemFailures" not in src["responses"]:
            problems.append(f"limits ({where}): {fn}'s {kind} source cannot resume after the first failed record")
        if not src["on_failure"].endswith("-dlq"):
            problems.append(f"limits ({where}): {fn}'s {kind} source records discarded batches nowhere a runbook reads")
        if "sqs:SendMessage" not in model["stream_iam"].get(kind, set()):
            problems.append(f"limits ({where}): {fn}'s role cannot record discarded {kind} batches in {src['on_failure']}")
    for fn, expr in model["schedules"].items():
        if not SCHEDULE.fullmatch(str(expr)):
            problems.append(f"limits ({where}): {fn}'s schedule {expr!r} is not a rate or cron expression EventBridge accepts")
    if model["rules"] > RULES_PER_BUS:
        problems.append(f"limits ({where}): {model['rules']} rules, more than the {RULES_PER_BUS} an event bus allows")
    kb = model["keep_builds"]
    if not kb or kb["min"] < 0 or kb["max"] > MAX_KEEP_BUILDS:
        problems.append(f"limits ({where}): kept builds are not bounded to 0..{MAX_KEEP_BUILDS} ({kb or 'no bound'}); "
                        "each keeps a Glue table per model")
    return problems


def service_name(v) -> str:
    """`logs.${local.region}.amazonaws.com` and its !Sub twin, alike."""
    text = v["Fn::Sub"] if isinstance(v, dict) else v
    return re.sub(r"\$\{[^}]*\}", "<region>", text)


# What each service's guide documents for a customer managed key: the
# condition keys its statement must carry.
KMS_DOCUMENTED = {
    "logs.<region>.amazonaws.com": {("ArnLike", "kms:EncryptionContext:aws:logs:arn")},
    "s3.amazonaws.com": {("ArnEquals", "aws:SourceArn"), ("StringEquals", "aws:SourceAccount")},
    "cloudwatch.amazonaws.com": set(),
}


def tf_kms(tf: dict) -> dict:
    docs = {}
    for d in tf.get("data", []):
        docs.update(d.get("aws_iam_policy_document", {}))
    out = {}
    for st in docs["kms"]["statement"]:
        for pr in st.get("principals", []):
            if unquote(pr["type"]) != "Service":
                continue
            for ident in pr["identifiers"]:
                out[service_name(unquote(ident))] = {
                    "actions": sorted(unquote(a) for a in st["actions"]),
                    "conditions": sorted((unquote(c["test"]), unquote(c["variable"])) for c in st.get("condition", [])),
                }
    return out


def sam_kms(doc: dict) -> dict:
    out = {}
    for st in doc["Resources"]["KmsKey"]["Properties"]["KeyPolicy"]["Statement"]:
        svc = st.get("Principal", {}).get("Service")
        if svc is None:
            continue
        for one in svc if isinstance(svc, list) else [svc]:
            out[service_name(one)] = {
                "actions": sorted(st["Action"] if isinstance(st["Action"], list) else [st["Action"]]),
                "conditions": sorted((test, key) for test, kv in st.get("Condition", {}).items() for key in kv),
            }
    return out


def kms_problems(model: dict, where: str) -> list[str]:
    problems = []
    for svc, st in model["kms"].items():
        if svc not in KMS_DOCUMENTED:
            problems.append(f"kms ({where}): the key trusts {svc}, which nothing in Silt needs")
            continue
        if set(map(tuple, st["conditions"])) != KMS_DOCUMENTED[svc]:
            problems.append(f"kms ({where}): {svc}'s statement has conditions {st['conditions']}, "
                            f"not the documented {sorted(KMS_DOCUMENTED[svc])}")
    return problems


def compare(tf: dict, sam: dict) -> list[str]:
    problems = []
    for where, model in [("Terraform", tf), ("SAM", sam)]:
        problems.extend(limits(model, where))
        problems.extend(kms_problems(model, where))
    if tf["kms"] != sam["kms"]:
        problems.append(f"kms: the key policies differ: Terraform {tf['kms']} vs SAM {sam['kms']}")
    for where, model in [("Terraform", tf), ("SAM", sam)]:
        if model["reserve"]["default"]:
            problems.append(f"concurrency ({where}): reserved by default; a new account (limit 10) cannot deploy it")
    for aspect in ["functions", "queues", "event_sources", "streams", "stream_iam", "schedules", "alarms", "runbooks"]:
        a, b = tf[aspect], sam[aspect]
        if isinstance(a, set):
            for x in sorted(a - b):
                problems.append(f"{aspect}: {x} only in Terraform")
            for x in sorted(b - a):
                problems.append(f"{aspect}: {x} only in SAM")
            continue
        for k in sorted(set(a) | set(b), key=str):
            if k not in b:
                problems.append(f"{aspect}: {k} only in Terraform")
            elif k not in a:
                problems.append(f"{aspect}: {k} only in SAM")
            elif a[k] != b[k]:
                problems.append(f"{aspect}: {k} differs: Terraform {a[k]} vs SAM {b[k]}")
    existing = {f"docs/runbooks/{p.name}" for p in RUNBOOKS.glob("*.md")}
    for where, model in [("Terraform", tf), ("SAM", sam)]:
        linked = set()
        for key, books in model["runbooks"].items():
            for book in books:
                if not book:
                    problems.append(f"runbooks ({where}): an alarm on {key} links no runbook")
                elif book not in existing:
                    problems.append(f"runbooks ({where}): an alarm on {key} links {book}, which does not exist")
                linked.add(book)
        for book in sorted(existing - linked):
            problems.append(f"runbooks ({where}): {book} is linked by no alarm")
        for w in model["wide"]:
            problems.append(f"iam ({where}): {w}, where a narrower resource exists")
    for fn in sorted(set(tf["iam"]) | set(sam["iam"])):
        a, b = tf["iam"].get(fn, set()), sam["iam"].get(fn, set())
        for x in sorted(a - b):
            problems.append(f"iam: {fn} grants {x} only in Terraform")
        for x in sorted(b - a):
            problems.append(f"iam: {fn} grants {x} only in SAM")
        for x in sorted(a | b):
            if x.endswith(":*") or x == "*":
                problems.append(f"iam: {fn} grants wildcard action {x}")
    return problems


def self_test(tf: dict, sam: dict) -> None:
    mutations = {
        "a function": lambda m: m["functions"].pop("monitor"),
        "a queue": lambda m: m["queues"].discard("landing-dlq"),
        "an event source": lambda m: m["event_sources"].pop(("land", "landing")),
        "a batching window": lambda m: m["event_sources"][("land", "landing")].update(window=0),
        "a schedule": lambda m: m["schedules"].pop("transform"),
        "an alarm": lambda m: m["alarms"].update({("AWS/Lambda", "Errors"): 3}),
        "a runbook link": lambda m: m["runbooks"].update({("Silt", "ModelsFailed"): {""}}),
        "a runbook nobody links": lambda m: m["runbooks"].update({("Silt", "OrphanObjects"): {"docs/runbooks/ingest-lag.md"}}),
        "a permission": lambda m: m["iam"]["land"].discard("s3:PutObject"),
        "an extra permission": lambda m: m["iam"]["ingest"].add("s3:DeleteObject"),
        "a wildcard resource": lambda m: m["wide"].append("land: ['s3:PutObject'] on every resource"),
        "a reservation by default": lambda m: m["reserve"].update(default=True),
        "a visibility timeout below six function timeouts": lambda m: m["queue_attrs"]["landing"].update(visibility=300),
        "a dead-letter queue keeping less than its source": lambda m: m["queue_attrs"]["ingest"].update(dlq_retention=60),
        "a batch of 11 without a window": lambda m: m["event_sources"][("ingest", "ingest")].update(batch_size=11, window=0),
        "a schedule EventBridge refuses": lambda m: m["schedules"].update(monitor="every 5 minutes"),
        "unbounded kept builds": lambda m: m["keep_builds"].clear(),
        "a function beyond Lambda's timeout": lambda m: m["functions"]["transform"].update(timeout=901),
        "a stream source": lambda m: m["streams"].pop(("ingest", "kinesis")),
        "a stream source starting at LATEST": lambda m: m["streams"][("ingest", "dynamodb")].update(starting_position="LATEST"),
        "a stream source retrying beyond Lambda's range": lambda m: m["streams"][("ingest", "kinesis")].update(retries=10001),
        "a stream read action": lambda m: m["stream_iam"]["dynamodb"].discard("dynamodb:GetRecords"),
        "the right to record discarded batches": lambda m: m["stream_iam"]["kinesis"].discard("sqs:SendMessage"),
        "CloudWatch Logs trusted by source account": lambda m: m["kms"]["logs.<region>.amazonaws.com"].update(
            conditions=[("StringEquals", "aws:SourceAccount")]),
        "a service the key need not trust": lambda m: m["kms"].update({"events.amazonaws.com": {"actions": [], "conditions": []}}),
    }
    for what, mutate in mutations.items():
        changed = copy.deepcopy(sam)
        mutate(changed)
        if not compare(tf, changed):
            raise SystemExit(f"parity self-test: removing or changing {what} in SAM went unnoticed")
    print(f"parity self-test: {len(mutations)} mutations all detected")


def main() -> None:
    raw_tf = load_tf()
    tf = tf_model(raw_tf)
    tf["kms"] = tf_kms(raw_tf)
    with open(SAM) as fh:
        doc = yaml.load(fh, Loader=CfnLoader)
    sam = sam_model(doc)
    sam["kms"] = sam_kms(doc)
    problems = compare(tf, sam)
    if problems:
        print("parity: Terraform and SAM differ:")
        for p in problems:
            print(f"  - {p}")
        sys.exit(1)
    print(f"parity: {len(tf['functions'])} functions, {len(tf['queues'])} queues, {len(tf['event_sources'])} event sources, "
          f"{len(tf['streams'])} optional stream sources, "
          f"{len(tf['schedules'])} schedules, {sum(tf['alarms'].values())} alarms with their runbooks and every role's actions match")
    reserved = sum(f["concurrency"] for f in tf["functions"].values())
    print(f"limits: both deploy on an account limited to {NEW_ACCOUNT_CONCURRENCY} concurrent executions "
          f"(nothing reserved by default); reservation on needs a limit of {reserved + UNRESERVED_MINIMUM} or more")
    if "--self-test" in sys.argv:
        self_test(tf, sam)


if __name__ == "__main__":
    main()
