#!/usr/bin/env python3
"""Each function's IAM role, read from a template, acting on a moto server.

`roles.py terraform|sam --endpoint URL` reads the four functions' role
policies from the Terraform module or the SAM template (parsed, not copied),
resolves them for a deployment named `silt` in moto's account and region,
and creates them in the moto server at URL: one role per function, assumed
once, and a `harness` user for what the tests themselves do. It then turns
moto's IAM enforcement on (`/moto-api/reset-auth`, the endpoint behind
`INITIAL_NO_AUTH_ACTION_COUNT`) and prints, as JSON, the credentials of each
and the names the template gives the lake, queues, work group and database.

moto decides an action by its name for every service, and by its resource
only for S3 (bucket and key) and SQS (the queue); elsewhere it asks about
`*`, which a statement naming its resource never matches. So statements of
other services are loaded with `Resource: "*"`, and conditions, which moto
does not evaluate, are dropped: the test proves a needed action or S3/SQS
resource is granted, not that every condition would pass.

`--drop FUNCTION:ACTION` removes one action from one role first, so a test
can show the contract notices it. `--print` prints the resolved policies
and touches no server.
"""

import argparse
import json
import re
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import parity  # noqa: E402  (the template loaders)

NAME = "silt"
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
PARTITION = "aws"
KMS_ARN = f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000"
FUNCTIONS = ["ingest", "land", "transform", "monitor"]
# Services whose resource moto checks (see the module doc).
RESOURCE_CHECKED = {"s3", "sqs"}
# AWS authorises SQS's batch calls as their single-message action ("The
# permissions for ChangeMessageVisibilityBatch, DeleteMessageBatch, and
# SendMessageBatch are the same as for ChangeMessageVisibility,
# DeleteMessage, and SendMessage", SQS API reference); moto asks for the
# batch call's own name, so a grant of one is given to moto as both.
SAME_AS = {
    "sqs:SendMessage": ["sqs:SendMessageBatch"],
    "sqs:DeleteMessage": ["sqs:DeleteMessageBatch"],
    "sqs:ChangeMessageVisibility": ["sqs:ChangeMessageVisibilityBatch"],
}


# ---- Terraform --------------------------------------------------------------

class Tf:
    def __init__(self) -> None:
        tf = parity.load_tf()
        self.vars = {}
        for v in tf.get("variable", []):
            for name, body in v.items():
                self.vars[name] = parity.unquote(body.get("default"))
        self.vars["name"] = NAME
        self.locals = {}
        for block in tf.get("locals", []):
            self.locals.update(block)
        self.res: dict = {}
        for r in tf.get("resource", []):
            for rtype, named in r.items():
                for name, body in named.items():
                    self.res.setdefault(rtype, {})[name] = body
        self.docs = {}
        for d in tf.get("data", []):
            for dtype, named in d.items():
                if dtype == "aws_iam_policy_document":
                    self.docs.update(named)

    def value(self, v, each=None):
        """A block attribute: a quoted template, a lone `${expr}`, or a list."""
        if isinstance(v, list):
            return [self.value(x, each) for x in v]
        if not isinstance(v, str):
            return v
        m = re.fullmatch(r"\$\{(.*)\}", v)
        if m and not v.startswith('"'):
            return self.expr(m.group(1), each)
        text = parity.unquote(v)
        return re.sub(r"\$\{([^}]*)\}", lambda m: str(self.expr(m.group(1), each)), text)

    def name_of(self, rtype: str, name: str, attr: str, key=None) -> str:
        return self.value(self.res[rtype][name][attr], key)

    def expr(self, e: str, each=None):
        e = e.strip()
        if m := re.fullmatch(r"var\.(\w+) != null \? var\.\w+ : (.*)", e):
            v = self.vars[m.group(1)]
            return v if v not in (None, "null") else self.expr(m.group(2), each)
        if m := re.fullmatch(r"dirname\((.*)\)", e):
            return str(Path(self.expr(m.group(1), each)).parent)
        if m := re.fullmatch(r'replace\((.*), "(.*)", "(.*)"\)', e):
            return str(self.expr(m.group(1), each)).replace(m.group(2), m.group(3))
        if m := re.fullmatch(r"var\.(\w+)", e):
            return self.vars[m.group(1)]
        if m := re.fullmatch(r"local\.(\w+)", e):
            return self.value(self.locals[m.group(1)], each)
        if e == "each.key":
            return each
        fixed = {
            "data.aws_caller_identity.current.account_id": ACCOUNT,
            "data.aws_region.current.name": REGION,
            "data.aws_partition.current.partition": PARTITION,
            "aws_kms_key.this[0].arn": KMS_ARN,
        }
        if e in fixed:
            return fixed[e]
        m = re.fullmatch(r'(\w+)\.(\w+)(?:\["(\w+)"\])?\.(\w+)', e)
        if not m:
            raise SystemExit(f"roles: cannot resolve Terraform expression {e}")
        rtype, name, key, attr = m.groups()
        arn = f"arn:{PARTITION}"
        if rtype == "aws_s3_bucket":
            bucket = self.name_of(rtype, name, "bucket")
            return {"arn": f"{arn}:s3:::{bucket}", "bucket": bucket, "id": bucket}[attr]
        if rtype == "aws_sqs_queue":
            q = self.name_of(rtype, name, "name", key)
            return {"arn": f"{arn}:sqs:{REGION}:{ACCOUNT}:{q}", "name": q}[attr]
        if rtype == "aws_cloudwatch_log_group":
            # The provider drops the API's ":*" suffix from `arn`.
            g = self.name_of(rtype, name, "name", key)
            return {"arn": f"{arn}:logs:{REGION}:{ACCOUNT}:log-group:{g}", "name": g}[attr]
        if rtype == "aws_athena_workgroup":
            w = self.name_of(rtype, name, "name")
            return {"arn": f"{arn}:athena:{REGION}:{ACCOUNT}:workgroup/{w}", "name": w}[attr]
        if rtype == "aws_glue_catalog_database":
            d = self.name_of(rtype, name, "name")
            return {"arn": f"{arn}:glue:{REGION}:{ACCOUNT}:database/{d}", "name": d}[attr]
        raise SystemExit(f"roles: cannot resolve Terraform reference {e}")

    def policies(self) -> dict:
        out = {}
        for fn in FUNCTIONS:
            statements = []
            for st in self.docs[fn]["statement"]:
                resources = self.value(st["resources"])
                statements.append({
                    "Sid": parity.unquote(st.get("sid", "")),
                    "Effect": parity.unquote(st.get("effect", '"Allow"')),
                    "Action": [parity.unquote(a) for a in st["actions"]],
                    "Resource": resources if isinstance(resources, list) else [resources],
                    "Condition": st.get("condition"),
                })
            out[fn] = statements
        return out

    def names(self) -> dict:
        return {
            "lake": self.expr("aws_s3_bucket.lake.bucket"),
            "results": self.expr("aws_s3_bucket.athena_results.bucket"),
            "queues": {k: self.expr(f'aws_sqs_queue.queue["{k}"].name') for k in ["ingest", "landing", "transform"]},
            "workgroup": self.expr("aws_athena_workgroup.this.name"),
            "database": self.expr("aws_glue_catalog_database.this.name"),
            "pii_key_parameter": self.vars["pii_key_parameter"],
            "project_config_key": self.vars["project_config_key"],
        }


# ---- SAM --------------------------------------------------------------------

class Sam:
    def __init__(self) -> None:
        import yaml
        with open(parity.SAM) as fh:
            doc = yaml.load(fh, Loader=parity.CfnLoader)
        self.params = {k: v.get("Default") for k, v in doc.get("Parameters", {}).items()}
        self.params["Name"] = NAME
        self.res = doc["Resources"]
        self.conditions = {"CreateKey": self.params.get("KmsKeyArn", "") == ""}

    def attr(self, lid: str, attr: str | None):
        """`!Ref lid` (attr None) or `!GetAtt lid.attr`, as CloudFormation answers."""
        if lid in self.params and attr is None:
            return self.params[lid]
        pseudo = {"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
        if lid in pseudo:
            return pseudo[lid]
        r = self.res[lid]
        p, t = r["Properties"], r["Type"]
        arn = f"arn:{PARTITION}"
        if t == "AWS::S3::Bucket":
            b = self.eval(p["BucketName"])
            return {None: b, "Arn": f"{arn}:s3:::{b}"}[attr]
        if t == "AWS::SQS::Queue":
            q = self.eval(p["QueueName"])
            return {None: f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{q}", "QueueName": q,
                    "Arn": f"{arn}:sqs:{REGION}:{ACCOUNT}:{q}"}[attr]
        if t == "AWS::Logs::LogGroup":
            # CloudFormation's Arn of a log group ends in ":*".
            g = self.eval(p["LogGroupName"])
            return {None: g, "Arn": f"{arn}:logs:{REGION}:{ACCOUNT}:log-group:{g}:*"}[attr]
        if t == "AWS::Athena::WorkGroup":
            return {None: self.eval(p["Name"])}[attr]
        if t == "AWS::Glue::Database":
            return {None: self.eval(p["DatabaseInput"]["Name"])}[attr]
        if t == "AWS::KMS::Key":
            return {"Arn": KMS_ARN}[attr]
        raise SystemExit(f"roles: cannot resolve SAM {lid}.{attr}")

    def eval(self, v):
        if isinstance(v, list):
            return [self.eval(x) for x in v]
        if not isinstance(v, dict):
            return v
        if "Ref" in v:
            return self.attr(v["Ref"], None)
        if "Fn::GetAtt" in v:
            g = v["Fn::GetAtt"]
            lid, attr = g.split(".", 1) if isinstance(g, str) else g
            return self.attr(lid, attr)
        if "Fn::If" in v:
            cond, yes, no = v["Fn::If"]
            return self.eval(yes if self.conditions[cond] else no)
        if "Fn::Join" in v:
            sep, items = v["Fn::Join"]
            return sep.join(self.eval(items))
        if "Fn::Split" in v:
            sep, text = v["Fn::Split"]
            return self.eval(text).split(sep)
        if "Fn::Sub" in v:
            def one(m):
                ref = m.group(1)
                lid, _, attr = ref.partition(".")
                return str(self.attr(lid, attr or None))
            return re.sub(r"\$\{([\w:.]+)\}", one, v["Fn::Sub"])
        raise SystemExit(f"roles: cannot resolve SAM value {v}")

    def role_of(self, fn: str) -> str:
        for lid, r in self.res.items():
            if r["Type"] == "AWS::Serverless::Function" and self.eval(r["Properties"]["FunctionName"]) == f"{NAME}-{fn}":
                g = r["Properties"]["Role"]["Fn::GetAtt"]
                return g.split(".")[0] if isinstance(g, str) else g[0]
        raise SystemExit(f"roles: no SAM function {fn}")

    def policies(self) -> dict:
        out = {}
        for fn in FUNCTIONS:
            statements = []
            for pol in self.res[self.role_of(fn)]["Properties"]["Policies"]:
                for st in pol["PolicyDocument"]["Statement"]:
                    a, r = st["Action"], self.eval(st["Resource"])
                    statements.append({
                        "Sid": st.get("Sid", ""),
                        "Effect": st["Effect"],
                        "Action": [a] if isinstance(a, str) else list(a),
                        "Resource": r if isinstance(r, list) else [r],
                        "Condition": st.get("Condition"),
                    })
            out[fn] = statements
        return out

    def names(self) -> dict:
        of_type = lambda t: [lid for lid, r in self.res.items() if r["Type"] == t]  # noqa: E731
        queues = {}
        for lid in of_type("AWS::SQS::Queue"):
            q = self.attr(lid, "QueueName")
            if not q.endswith("-dlq"):
                queues[q.removeprefix(f"{NAME}-")] = q
        buckets = {self.attr(lid, None) for lid in of_type("AWS::S3::Bucket")}
        return {
            "lake": next(b for b in buckets if "-lake-" in b),
            "results": next(b for b in buckets if "-athena-" in b),
            "queues": queues,
            "workgroup": self.attr(of_type("AWS::Athena::WorkGroup")[0], None),
            "database": self.attr(of_type("AWS::Glue::Database")[0], None),
            "pii_key_parameter": self.params["PiiKeyParameter"],
            "project_config_key": self.params["ProjectConfigKey"],
        }


# ---- moto -------------------------------------------------------------------

def for_moto(statements: list) -> dict:
    """The policy as moto can evaluate it (see the module doc)."""
    out = []
    for st in statements:
        for action in [a for granted in st["Action"] for a in [granted, *SAME_AS.get(granted, [])]]:
            service = action.split(":")[0]
            out.append({
                "Effect": st["Effect"],
                "Action": action,
                "Resource": st["Resource"] if service in RESOURCE_CHECKED else "*",
            })
    return {"Version": "2012-10-17", "Statement": out}


def install(endpoint: str, policies: dict) -> dict:
    import boto3
    kw = dict(endpoint_url=endpoint, region_name=REGION, aws_access_key_id="setup", aws_secret_access_key="setup")
    iam, sts = boto3.client("iam", **kw), boto3.client("sts", **kw)
    iam.create_user(UserName="harness")
    iam.put_user_policy(UserName="harness", PolicyName="everything", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="harness")["AccessKey"]
    creds = {"harness": {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"], "token": None}}
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    for fn, statements in policies.items():
        role = iam.create_role(RoleName=f"{NAME}-{fn}", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
        iam.put_role_policy(RoleName=f"{NAME}-{fn}", PolicyName=f"{NAME}-{fn}",
                            PolicyDocument=json.dumps(for_moto(statements)))
        # Assumed before enforcement starts, as Lambda assumes it for the function.
        c = sts.assume_role(RoleArn=role["Arn"], RoleSessionName=fn, DurationSeconds=43200)["Credentials"]
        creds[fn] = {"key": c["AccessKeyId"], "secret": c["SecretAccessKey"], "token": c["SessionToken"]}
    req = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST",
                                 headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(req) as r:
        r.read()
    return creds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("template", choices=["terraform", "sam"])
    ap.add_argument("--endpoint")
    ap.add_argument("--drop", action="append", default=[], metavar="FUNCTION:ACTION")
    ap.add_argument("--print", action="store_true")
    args = ap.parse_args()
    t = Tf() if args.template == "terraform" else Sam()
    policies = t.policies()
    for d in args.drop:
        fn, action = d.split(":", 1)
        found = False
        for st in policies[fn]:
            if action in st["Action"]:
                st["Action"].remove(action)
                found = True
        if not found:
            raise SystemExit(f"roles: {fn} has no {action} to drop")
    if args.print or not args.endpoint:
        print(json.dumps({"names": t.names(), "policies": policies}, indent=1))
        return
    print(json.dumps({"names": t.names(), "credentials": install(args.endpoint, policies), "policies": policies}))


if __name__ == "__main__":
    main()
