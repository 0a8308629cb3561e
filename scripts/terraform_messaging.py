#!/usr/bin/env python3
"""The messaging resources one Terraform environment creates, as the AWS APIs name them.

Evaluates terraform/envs/ENV (its `sns`, `sqs` and `alarms` modules) with the variables of
`latamctl render terraform-vars` and prints, as JSON, each resource `latamctl provision` also
manages, with the attributes Terraform sets on it in the terms the SNS, SQS and CloudWatch APIs
use (`VisibilityTimeout`, `KmsMasterKeyId`, `RedrivePolicy`, `Policy`, ...):

    {"sns topic": {"name": ..., "attributes": {...}},
     "sqs queue": {...}, "sqs dlq": {...}, "sqs sns-dlq": {...},
     "sns subscription": {"attributes": {...}},
     "alarms": {"<alarm name>": {"MetricName": ..., "Threshold": ..., ...}}}

Values Terraform knows only after apply are `${<address>}` placeholders (`${aws_sqs_queue.dlq.arn}`,
`${aws_kms_key.queue.arn}`, `${aws_sns_topic.this.arn}` in module scope): the caller (the parity
test on moto, tests/it/parity.rs) substitutes what the emulator assigned. The account id is
`123456789012` (moto's) and the partition `aws`.

A small evaluator of the expressions these modules use (references, string templates,
`jsonencode`, object and list literals, `aws_iam_policy_document`); anything else is an error
naming the expression, so a module that grows past it fails loudly instead of comparing wrong.

Usage: terraform_messaging.py ROOT ENV VARS_JSON
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import hcl2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_hcl import unquote  # noqa: E402

ACCOUNT = "123456789012"


class Unsupported(Exception):
    pass


class Unevaluated:
    """A module argument this evaluator cannot compute; an error only if something reads it."""

    def __init__(self, why: str):
        self.why = why


def load_dir(path: Path) -> dict:
    merged: dict = {}
    for tf in sorted(path.glob("*.tf")):
        with tf.open() as f:
            doc = unquote(hcl2.load(f))
        for kind, entries in doc.items():
            merged.setdefault(kind, []).extend(entries if isinstance(entries, list) else [entries])
    return merged


# --------------------------------------------------------------------------------------------
# Expressions
# --------------------------------------------------------------------------------------------

TOKEN = re.compile(
    r'\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>"(?:[^"\\]|\\.)*")|(?P<name>[A-Za-z_][\w-]*)|(?P<op>==|!=|>=|<=|&&|\|\||[{}\[\]().,=:?*/+<>!-]))'
)


def tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = TOKEN.match(text, pos)
        if not m:
            raise Unsupported(f"cannot read {text[pos:]!r} in {text!r}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class Parser:
    def __init__(self, text: str, scope: "Scope"):
        self.toks = tokens(text)
        self.i = 0
        self.scope = scope
        self.text = text

    def peek(self, value=None):
        if self.i >= len(self.toks):
            return None
        t = self.toks[self.i]
        return t if value is None or t[1] == value else None

    def take(self, value=None):
        t = self.peek(value)
        if t is None:
            raise Unsupported(f"expected {value or 'more'} in {self.text!r}")
        self.i += 1
        return t

    def binary(self, ops, operand):
        left = operand()
        while self.i < len(self.toks) and self.toks[self.i][0] == "op" and self.toks[self.i][1] in ops:
            op = self.take()[1]
            right = operand()
            left = {
                "*": lambda a, b: a * b, "/": lambda a, b: a / b,
                "+": lambda a, b: a + b, "-": lambda a, b: a - b,
                "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
                ">": lambda a, b: a > b, "<": lambda a, b: a < b,
                ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b,
                "&&": lambda a, b: a and b, "||": lambda a, b: a or b,
            }[op](left, right)
        return left

    def unary(self):
        if self.peek("!"):
            self.take()
            return not self.unary()
        if self.peek("-"):
            self.take()
            return -self.unary()
        return self.primary()

    def expr(self):
        mul = lambda: self.binary(("*", "/"), self.unary)  # noqa: E731
        add = lambda: self.binary(("+", "-"), mul)  # noqa: E731
        cmp = lambda: self.binary(("==", "!=", ">", "<", ">=", "<="), add)  # noqa: E731
        cond = self.binary(("&&", "||"), cmp)
        if self.peek("?"):
            self.take("?")
            a = self.expr()
            self.take(":")
            b = self.expr()
            return a if cond else b
        return cond

    def primary(self):
        kind, value = self.take()
        if kind == "num":
            return float(value) if "." in value else int(value)
        if kind == "str":
            return self.scope.template(json.loads(value))
        if value == "{":
            obj = {}
            while not self.peek("}"):
                k = self.take()[1].strip('"')
                self.take("=") if self.peek("=") else self.take(":")
                obj[k] = self.expr()
                if self.peek(","):
                    self.take(",")
            self.take("}")
            return obj
        if value == "[":
            items = []
            while not self.peek("]"):
                items.append(self.expr())
                if self.peek(","):
                    self.take(",")
            self.take("]")
            return items
        if kind == "name":
            if value in ("true", "false"):
                return value == "true"
            if value == "null":
                return None
            if self.peek("("):
                self.take("(")
                args = []
                while not self.peek(")"):
                    args.append(self.expr())
                    if self.peek(","):
                        self.take(",")
                self.take(")")
                return self.scope.call(value, args)
            path = [value]
            while self.peek(".") or self.peek("["):
                if self.peek("."):
                    self.take(".")
                    path.append(self.take()[1])
                else:
                    self.take("[")
                    path.append(str(self.expr()))
                    self.take("]")
            return self.scope.ref(path)
        raise Unsupported(f"unexpected {value!r} in {self.text!r}")


class Scope:
    """One module's evaluation scope: its variables, locals, resources and data sources."""

    def __init__(self, tree: dict, variables: dict):
        self.tree = tree
        self.vars = variables
        self.locals_src = {}
        for body in tree.get("locals", []):
            self.locals_src.update(body)
        self.local_cache: dict = {}

    def value(self, raw):
        if isinstance(raw, dict):
            return {k: self.value(v) for k, v in raw.items()}
        if isinstance(raw, list):
            return [self.value(v) for v in raw]
        if isinstance(raw, str):
            if raw.startswith("${") and raw.endswith("}") and raw.count("${") == 1:
                return Parser(raw[2:-1], self).expr()
            return self.template(raw)
        return raw

    def template(self, text: str):
        if "${" not in text:
            return text
        out, pos = [], 0
        while True:
            start = text.find("${", pos)
            if start < 0:
                out.append(text[pos:])
                break
            out.append(text[pos:start])
            depth, j = 0, start + 2
            while j < len(text):
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    if depth == 0:
                        break
                    depth -= 1
                j += 1
            v = Parser(text[start + 2 : j], self).expr()
            out.append(v if isinstance(v, str) else json.dumps(v))
            pos = j + 1
        return "".join(out)

    def call(self, name, args):
        if name == "jsonencode":
            return json.dumps(args[0], separators=(",", ":"))
        if name == "tostring":
            return str(args[0])
        if name in ("max", "min"):
            return (max if name == "max" else min)(args)
        if name in ("floor", "ceil"):
            import math

            return int((math.floor if name == "floor" else math.ceil)(args[0]))
        if name == "coalesce":
            return next(a for a in args if a not in (None, ""))
        raise Unsupported(f"function {name}()")

    def resource(self, rtype, label):
        for entry in self.tree.get("resource", []):
            if rtype in entry and label in entry[rtype]:
                return entry[rtype][label]
        return None

    def data(self, rtype, label):
        for entry in self.tree.get("data", []):
            if rtype in entry and label in entry[rtype]:
                return entry[rtype][label]
        return None

    def ref(self, path):
        head = path[0]
        if head == "var":
            if path[1] not in self.vars:
                raise Unsupported(f"var.{path[1]} has no value")
            value = self.vars[path[1]]
            if isinstance(value, Unevaluated):
                raise Unsupported(value.why)
            return value
        if head == "local":
            name = path[1]
            if name not in self.local_cache:
                self.local_cache[name] = self.value(self.locals_src[name])
            return self.local_cache[name]
        if head == "data":
            rtype, label, attr = path[1], path[2], path[3]
            if rtype == "aws_caller_identity":
                return ACCOUNT
            if rtype == "aws_partition":
                return "aws"
            if rtype == "aws_iam_policy_document" and attr == "json":
                return json.dumps(self.policy(self.data(rtype, label)), separators=(",", ":"))
            raise Unsupported(f"data.{rtype}.{label}.{attr}")
        # A resource attribute known after apply; `name` of a resource is known now.
        rtype, label, attr = path[0], path[1], path[-1]
        body = self.resource(rtype, label)
        if body is not None and attr in ("name", "identifier") and attr in body:
            return self.value(body[attr])
        return "${" + ".".join(path) + "}"

    def policy(self, body) -> dict:
        """An aws_iam_policy_document as the JSON AWS stores."""
        statements = []
        for st in body.get("statement", []):
            out: dict = {}
            if "sid" in st:
                out["Sid"] = self.value(st["sid"])
            out["Effect"] = self.value(st.get("effect", "Allow"))
            for p in st.get("principals", []):
                ids = self.value(p["identifiers"])
                out.setdefault("Principal", {})[self.value(p["type"])] = ids[0] if len(ids) == 1 else ids
            if out.get("Principal") == {"*": "*"}:
                out["Principal"] = "*"
            actions = self.value(st.get("actions", []))
            out["Action"] = actions[0] if len(actions) == 1 else actions
            res = self.value(st.get("resources", []))
            out["Resource"] = res[0] if len(res) == 1 else res
            for c in st.get("condition", []):
                values = self.value(c["values"])
                out.setdefault("Condition", {}).setdefault(self.value(c["test"]), {})[
                    self.value(c["variable"])
                ] = values[0] if len(values) == 1 else values
            statements.append(out)
        return {"Version": "2012-10-17", "Statement": statements}


def module_vars(tree: dict, given: dict) -> dict:
    out = {}
    for entry in tree.get("variable", []):
        for name, body in entry.items():
            if name in given:
                out[name] = given[name]
            elif "default" in body:
                out[name] = body["default"]
    return out


def sqs_attributes(scope: Scope, body: dict) -> dict:
    names = {
        "visibility_timeout_seconds": "VisibilityTimeout",
        "message_retention_seconds": "MessageRetentionPeriod",
        "receive_wait_time_seconds": "ReceiveMessageWaitTimeSeconds",
        "kms_master_key_id": "KmsMasterKeyId",
        "kms_data_key_reuse_period_seconds": "KmsDataKeyReusePeriodSeconds",
        "sqs_managed_sse_enabled": "SqsManagedSseEnabled",
        "redrive_policy": "RedrivePolicy",
        "redrive_allow_policy": "RedriveAllowPolicy",
        "delay_seconds": "DelaySeconds",
        "max_message_size": "MaximumMessageSize",
    }
    out = {}
    for k, v in body.items():
        if k in names:
            value = scope.value(v)
            if value is not None:
                out[names[k]] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


# The alarms provision owns too, beyond every AWS/SQS one: seed 4.2's disk signal on RDS.
PROVISION_ALARMS = {("AWS/RDS", "FreeStorageSpace")}


def main(argv: list[str]) -> int:
    root, env, vars_file = Path(argv[1]), argv[2], Path(argv[3])
    env_dir = root / "terraform" / "envs" / env
    env_tree = load_dir(env_dir)
    tfvars = json.loads(vars_file.read_text())
    env_scope = Scope(env_tree, module_vars(env_tree, tfvars))
    modules = {}
    for entry in env_tree.get("module", []):
        for label, body in entry.items():
            modules[label] = body

    scopes: dict[str, Scope] = {}

    def module_output(label: str, name: str):
        """`module.<label>.<name>`: the output's value in that module's scope."""
        scope = scopes.get(label)
        if scope is None:
            return "${module." + label + "." + name + "}"
        for entry in scope.tree.get("output", []):
            if name in entry:
                return scope.value(entry[name]["value"])
        raise Unsupported(f"module.{label} has no output {name}")

    def module_scope(label: str) -> Scope:
        body = modules[label]
        source = (env_dir / body["source"]).resolve()
        tree = load_dir(source)
        given = {}
        for k, v in body.items():
            if k in ("source", "providers", "depends_on", "count", "for_each"):
                continue
            m = re.fullmatch(r"\$\{module\.(\w+)\.(\w+)\}", str(v))
            try:
                given[k] = module_output(m.group(1), m.group(2)) if m else env_scope.value(v)
            except Unsupported as e:
                given[k] = Unevaluated(f"module.{label} argument {k}: {e}")
        scopes[label] = Scope(tree, module_vars(tree, given))
        return scopes[label]

    out: dict = {}
    sns = module_scope("sns")
    topic = sns.resource("aws_sns_topic", "this")
    topic_policy = sns.resource("aws_sns_topic_policy", "this")
    out["sns topic"] = {
        "name": sns.value(topic["name"]),
        "attributes": {
            "KmsMasterKeyId": sns.value(topic["kms_master_key_id"]),
            "Policy": sns.value(topic_policy["policy"]),
        },
    }

    sqs = module_scope("sqs")
    for resource, label, policy in [
        ("sqs queue", "this", "this"),
        ("sqs dlq", "dlq", "dlq"),
        ("sqs sns-dlq", "sns_dlq", "sns_dlq"),
    ]:
        body = sqs.resource("aws_sqs_queue", label)
        attrs = sqs_attributes(sqs, body)
        allow = sqs.resource("aws_sqs_queue_redrive_allow_policy", label)
        if allow is not None:
            attrs["RedriveAllowPolicy"] = sqs.value(allow["redrive_allow_policy"])
        pol = sqs.resource("aws_sqs_queue_policy", policy)
        if pol is not None:
            attrs["Policy"] = sqs.value(pol["policy"])
        out[resource] = {"name": sqs.value(body["name"]), "address": f"aws_sqs_queue.{label}", "attributes": attrs}

    sub = sqs.resource("aws_sns_topic_subscription", "this")
    sub_attrs = {"RawMessageDelivery": str(sqs.value(sub["raw_message_delivery"])).lower()}
    redrive = sqs.value(sub.get("redrive_policy"))
    if redrive is not None:
        sub_attrs["RedrivePolicy"] = redrive
    filt = sqs.value(sub.get("filter_policy"))
    if filt is not None:
        sub_attrs["FilterPolicy"] = filt
    out["sns subscription"] = {"attributes": sub_attrs}

    module_scope("rds")  # module.rds.instance_identifier names the RDS alarms' dimension
    alarms = module_scope("alarms")
    out["alarms"] = {}
    for entry in alarms.tree.get("resource", []):
        for label, body in entry.get("aws_cloudwatch_metric_alarm", {}).items():
            namespace, metric = alarms.value(body.get("namespace")), alarms.value(body.get("metric_name"))
            if (namespace, metric) not in PROVISION_ALARMS and namespace != "AWS/SQS":
                continue
            a = {
                "AlarmDescription": alarms.value(body.get("alarm_description")),
                "Namespace": alarms.value(body["namespace"]),
                "MetricName": alarms.value(body["metric_name"]),
                "Statistic": alarms.value(body.get("statistic")),
                "Period": alarms.value(body["period"]),
                "EvaluationPeriods": alarms.value(body["evaluation_periods"]),
                "DatapointsToAlarm": alarms.value(body.get("datapoints_to_alarm")),
                "ComparisonOperator": alarms.value(body["comparison_operator"]),
                "Threshold": float(alarms.value(body["threshold"])),
                "TreatMissingData": alarms.value(body.get("treat_missing_data")),
                "Dimensions": alarms.value(body["dimensions"]),
            }
            out["alarms"][alarms.value(body["alarm_name"])] = {k: v for k, v in a.items() if v is not None}
    json.dump(out, sys.stdout, indent=2, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Unsupported as e:
        print(f"terraform_messaging.py: unsupported expression: {e}", file=sys.stderr)
        sys.exit(2)
