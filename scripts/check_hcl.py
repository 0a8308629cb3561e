#!/usr/bin/env python3
"""Parse every .tf file under a Terraform tree with python-hcl2 and assert the invariants a
reviewer of latamctl's infrastructure cares about.

    check_hcl.py [TERRAFORM_DIR]              check the tree (default: <repo>/terraform)
    check_hcl.py --self-test [TERRAFORM_DIR]  break one invariant at a time in a temporary copy
                                              and require the checker to notice each one

Exit status: 0 when every file parses and every invariant holds, 1 otherwise (each violation is
printed as "path: message"). Syntax errors are violations too.

The invariants are deliberately structural (what is declared, not what a plan would compute):
  - every variable has a description and a type; every output has a description;
  - nothing is publicly accessible and no password is written in the code or exposed as output;
  - the messaging path is complete: SNS -> SQS subscription with raw delivery, a DLQ redrive,
    queue policy restricted to the topic (aws:SourceArn), KMS everywhere;
  - the subscription has its own redrive policy to a dedicated, encrypted, 14-day SNS DLQ that
    only the topic may write to, alarmed when not empty, and exposed by both environments;
  - RDS is private, encrypted, TLS-only, with a Secrets-Manager-managed password;
  - the Lambda worker is an SQS event source with ReportBatchItemFailures and the env contract;
  - IRSA trust policies pin both :sub and :aud;
  - IAM Allow statements use neither "*" resources nor wildcard actions outside KMS key policies;
  - environments pin the provider, use a remote backend, tag everything, expose the outputs
    latamctl needs, and dev/prod share one composition;
  - every inline checkov skip carries a reason; modules come from local paths only.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import hcl2

# ------------------------------------------------------------------------------------------------
# Parsing and normalisation
# ------------------------------------------------------------------------------------------------


def unquote(value):
    """python-hcl2 (>= 6) keeps the quotes of string literals and labels; drop them, drop its
    bookkeeping keys, keep everything else as-is ("${...}" marks an expression)."""
    if isinstance(value, dict):
        return {
            unquote(k): unquote(v)
            for k, v in value.items()
            if k not in ("__is_block__", "__comments__", "__inline_comments__")
        }
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


# Actions AWS authorizes only against Resource "*" (Service Authorization Reference: no
# resource types): the one case where an Allow on "*" is least privilege.
NO_RESOURCE_LEVEL = {"sns:ListTopics", "cloudwatch:GetMetricStatistics"}

# Parsed documents by file content: the self-test re-checks many copies of the same files.
_PARSED: dict[str, dict] = {}


class Tree:
    """All .tf files of one directory (a Terraform module), merged by block kind."""

    def __init__(self, path: Path):
        self.path = path
        self.files: dict[str, dict] = {}
        self.text: dict[str, str] = {}

    def blocks(self, kind: str):
        """(file, body) for top-level blocks without labels (terraform, locals)."""
        for name, doc in self.files.items():
            for body in doc.get(kind, []):
                yield name, body

    def labelled(self, kind: str):
        """(file, label, body) for one-label blocks (variable, output, module, provider)."""
        for name, doc in self.files.items():
            for entry in doc.get(kind, []):
                for label, body in entry.items():
                    yield name, label, body

    def typed(self, kind: str, rtype: str | None = None):
        """(file, type, name, body) for two-label blocks (resource, data)."""
        for name, doc in self.files.items():
            for entry in doc.get(kind, []):
                for t, named in entry.items():
                    if rtype is not None and t != rtype:
                        continue
                    for label, body in named.items():
                        yield name, t, label, body

    def resources(self, rtype: str):
        return [(f, n, b) for f, _, n, b in self.typed("resource", rtype)]

    def data(self, rtype: str):
        return [(f, n, b) for f, _, n, b in self.typed("data", rtype)]


def first(block_list):
    """A nested block parses as a list of bodies; return the first body (or {})."""
    if isinstance(block_list, list) and block_list and isinstance(block_list[0], dict):
        return block_list[0]
    if isinstance(block_list, dict):
        return block_list
    return {}


def walk(value, path=()):
    """Yield (key_path, value) for every dict entry in a parsed body."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield path + (k,), v
            yield from walk(v, path + (k,))
    elif isinstance(value, list):
        for v in value:
            yield from walk(v, path)


# ------------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------------


class Checker:
    def __init__(self, root: Path):
        self.root = root
        self.errors: list[str] = []
        self.checks = 0
        self.trees: dict[Path, Tree] = {}

    def require(self, ok: bool, where, message: str):
        self.checks += 1
        if not ok:
            rel = where.relative_to(self.root) if isinstance(where, Path) else where
            self.errors.append(f"{rel}: {message}")

    # -- loading --------------------------------------------------------------------------------

    def load(self):
        files = sorted(p for p in self.root.rglob("*.tf") if ".terraform" not in p.parts)
        self.require(bool(files), self.root, "no .tf files found")
        for path in files:
            tree = self.trees.setdefault(path.parent, Tree(path.parent))
            text = path.read_text()
            tree.text[path.name] = text
            try:
                if text not in _PARSED:
                    _PARSED[text] = unquote(hcl2.loads(text))
                tree.files[path.name] = _PARSED[text]
                self.checks += 1
            except Exception as exc:  # python-hcl2 raises lark errors of several kinds
                self.require(False, path, f"HCL syntax error: {str(exc).splitlines()[0]}")
        return len(files)

    def tree(self, rel: str) -> Tree | None:
        tree = self.trees.get(self.root / rel)
        self.require(tree is not None, self.root / rel, "directory with .tf files expected")
        return tree

    # -- everywhere -----------------------------------------------------------------------------

    def check_all_trees(self):
        for tree in self.trees.values():
            for fname, label, body in tree.labelled("variable"):
                where = tree.path / fname
                self.require(bool(str(body.get("description", "")).strip()), where,
                             f'variable "{label}" has no description')
                self.require("type" in body, where, f'variable "{label}" has no type')
            for fname, label, body in tree.labelled("output"):
                where = tree.path / fname
                self.require(bool(str(body.get("description", "")).strip()), where,
                             f'output "{label}" has no description')
                self.require("password" not in label.lower(), where,
                             f'output "{label}" looks like a password')
                self.require("password" not in str(body.get("value", "")).lower(), where,
                             f'output "{label}" exposes a password attribute')
            for fname, label, body in tree.labelled("module"):
                src = str(body.get("source", ""))
                self.require(src.startswith("./") or src.startswith("../"), tree.path / fname,
                             f'module "{label}" source {src!r} is not a local path (no registry '
                             "modules: there is no network for terraform init here)")
            for fname, text in tree.text.items():
                where = tree.path / fname
                for n, line in enumerate(text.splitlines(), 1):
                    code = line.split("#", 1)[0]
                    if re.match(r"\s*publicly_accessible\s*=\s*true\b", code):
                        self.require(False, where, f"line {n}: publicly_accessible = true")
                    if re.match(r"\s*(master_)?password\s*=", code):
                        self.require(False, where, f"line {n}: literal password attribute")
                    m = re.search(r"checkov:skip=([A-Z0-9_]+)(:(.*))?", line)
                    if m:
                        reason = (m.group(3) or "").strip()
                        self.require(len(reason) >= 20, where,
                                     f"line {n}: checkov skip {m.group(1)} needs a real reason")
            for fname, rtype, label, body in tree.typed("resource"):
                where = tree.path / fname
                for key_path, value in walk(body):
                    if key_path[-1] == "publicly_accessible":
                        self.require(value is False, where, f"{rtype}.{label}: publicly_accessible must be false")
                    if key_path[-1] in ("password", "master_password"):
                        self.require(False, where, f"{rtype}.{label}: sets {key_path[-1]}")
                if rtype == "aws_security_group":
                    self.require("ingress" not in body and "egress" not in body, where,
                                 f"aws_security_group.{label}: use aws_vpc_security_group_*_rule resources")
                if rtype == "aws_vpc_security_group_ingress_rule":
                    self.require("cidr_ipv4" not in body and "cidr_ipv6" not in body, where,
                                 f"{rtype}.{label}: ingress only from security groups, never from CIDRs")
                if rtype == "aws_vpc_security_group_egress_rule" and body.get("cidr_ipv4") == "0.0.0.0/0":
                    # The only egress to the internet: HTTPS to AWS APIs.
                    self.require(body.get("from_port") == 443 and body.get("to_port") == 443, where,
                                 f"{rtype}.{label}: egress to 0.0.0.0/0 only on 443")
                if rtype == "aws_kms_key":
                    self.require(body.get("enable_key_rotation") is True, where,
                                 f"aws_kms_key.{label}: enable_key_rotation must be true")
                    self.require("policy" in body, where, f"aws_kms_key.{label}: needs an explicit key policy")
                if rtype == "aws_cloudwatch_log_group":
                    self.require("kms_key_id" in body and "retention_in_days" in body, where,
                                 f"aws_cloudwatch_log_group.{label}: needs kms_key_id and retention_in_days")
            self.check_policy_documents(tree)

    def check_policy_documents(self, tree: Tree):
        for fname, label, body in tree.data("aws_iam_policy_document"):
            where = tree.path / fname
            key_policy = label == "kms" or label.endswith("_kms_key")
            for st in body.get("statement", []):
                if st.get("effect", "Allow") != "Allow":
                    continue
                actions = [str(a) for a in st.get("actions", [])]
                resources = [str(r) for r in st.get("resources", [])]
                sid = st.get("sid", "?")
                if "sts:AssumeRoleWithWebIdentity" in actions:
                    conds = {(c.get("test"), str(c.get("variable", "")).rsplit(":", 1)[-1])
                             for c in st.get("condition", [])}
                    self.require(("StringEquals", "sub") in conds and ("StringEquals", "aud") in conds,
                                 where, f"{label}/{sid}: IRSA trust must pin :sub and :aud with StringEquals")
                if key_policy:
                    # Key policies: "*" is the key itself; only the account root may hold kms:*.
                    if "kms:*" in actions:
                        principals = [p for pr in st.get("principals", []) for p in pr.get("identifiers", [])]
                        self.require(all(str(p).endswith(":root") or "local.account_root" in str(p) for p in principals), where,
                                     f"{label}/{sid}: kms:* only for the account root")
                    for pr in st.get("principals", []):
                        if pr.get("type") == "Service":
                            self.require(bool(st.get("condition")), where,
                                         f"{label}/{sid}: service principals need a source condition")
                    continue
                # Actions with no resource-level permissions are evaluated against "*" by AWS.
                self.require("*" not in resources or set(actions) <= NO_RESOURCE_LEVEL, where,
                             f"{label}/{sid}: Allow on Resource \"*\"")
                self.require(not any(a == "*" or a.endswith(":*") for a in actions), where,
                             f"{label}/{sid}: wildcard action {actions}")

    # -- modules --------------------------------------------------------------------------------

    def check_modules(self):
        modules = self.root / "modules"
        for name in ("sns", "sqs", "rds", "eks", "iam", "lambda", "alarms"):
            t = self.tree(f"modules/{name}")
            if t is None:
                continue
            for f in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
                self.require(f in t.files, modules / name, f"missing {f}")
            rp = [first(b.get("required_providers")) for _, b in t.blocks("terraform")]
            self.require(any("aws" in r and "version" in r["aws"] for r in rp), modules / name,
                         "versions.tf must declare required_providers.aws with a version")
            getattr(self, f"check_{name}")(t)

    def one(self, t: Tree, rtype: str, kind="resource"):
        found = t.resources(rtype) if kind == "resource" else t.data(rtype)
        self.require(bool(found), t.path, f"no {rtype} {kind}")
        return found

    def check_sns(self, t: Tree):
        for f, n, b in self.one(t, "aws_sns_topic"):
            self.require("kms_master_key_id" in b, t.path / f, f"aws_sns_topic.{n}: not KMS-encrypted")
        self.one(t, "aws_sns_topic_policy")
        self.one(t, "aws_kms_key")

    def check_sqs(self, t: Tree):
        queues = self.one(t, "aws_sqs_queue")
        self.require(len(queues) >= 2, t.path, "queue and dead-letter queue expected")
        redrives = [b for _, _, b in queues if "redrive_policy" in b]
        self.require(len(redrives) == 1, t.path, "exactly one queue with a redrive_policy expected")
        for b in redrives:
            rp = str(b["redrive_policy"])
            self.require("deadLetterTargetArn" in rp and "maxReceiveCount" in rp, t.path,
                         "redrive_policy needs deadLetterTargetArn and maxReceiveCount")
            self.require("var.max_receive_count" in rp, t.path, "maxReceiveCount must be a variable")
            for attr in ("visibility_timeout_seconds", "message_retention_seconds"):
                self.require(attr in b, t.path, f"main queue must set {attr}")
        for f, n, b in queues:
            self.require("kms_master_key_id" in b, t.path / f, f"aws_sqs_queue.{n}: not KMS-encrypted")
        for f, n, b in self.one(t, "aws_sqs_queue_redrive_allow_policy"):
            self.require("byQueue" in str(b.get("redrive_allow_policy")), t.path / f,
                         "DLQ redrive_allow_policy must be byQueue")
        subs = self.one(t, "aws_sns_topic_subscription")
        for f, n, b in subs:
            self.require(b.get("protocol") == "sqs", t.path / f, f"subscription {n}: protocol must be sqs")
            self.require(b.get("raw_message_delivery") is True, t.path / f,
                         f"subscription {n}: raw_message_delivery must be true")
        self.one(t, "aws_sqs_queue_policy")
        # Every statement that lets someone SendMessage must be pinned to the topic.
        send_statements = [st for _, _, b in t.data("aws_iam_policy_document") for st in b.get("statement", [])
                           if "sqs:SendMessage" in st.get("actions", []) and st.get("effect", "Allow") == "Allow"]
        source_arn = bool(send_statements) and all(
            any(c.get("variable") == "aws:SourceArn" for c in st.get("condition", [])) for st in send_statements)
        self.require(source_arn, t.path, "queue policy must allow SendMessage only with an aws:SourceArn condition")
        self.check_sns_dlq(t, queues, redrives, subs)
        var_names = {label for _, label, _ in t.labelled("variable")}
        self.require("max_receive_count" in var_names, t.path, "variable max_receive_count expected")
        for _, label, body in t.labelled("variable"):
            if label == "max_receive_count":
                self.require(body.get("default") == 5, t.path, "max_receive_count must default to 5")

    def check_sns_dlq(self, t: Tree, queues, redrives, subs):
        """SNS does not retry client-side delivery errors (queue or KMS policy denies SNS, queue
        deleted/recreated) and discards the message unless the subscription has a redrive policy:
        the API already answered 200, so that would be silent data loss."""
        ref = re.compile(r"aws_sqs_queue\.(\w+)\.arn")
        bodies = {n: b for _, n, b in queues}
        worker_dlqs = {q for b in redrives for q in ref.findall(str(b["redrive_policy"]))}
        docs = {n: b for _, n, b in t.data("aws_iam_policy_document")}
        queue_policies = {n: b for _, n, b in t.resources("aws_sqs_queue_policy")}
        kms_sns = any(
            any("sns.amazonaws.com" in pr.get("identifiers", []) for pr in st.get("principals", []))
            and any(str(a).startswith("kms:GenerateDataKey") for a in st.get("actions", []))
            and any(c.get("variable") == "aws:SourceArn" for c in st.get("condition", []))
            for n, b in docs.items() if n == "kms" for st in b.get("statement", []))
        for f, n, b in subs:
            w = t.path / f
            rp = str(b.get("redrive_policy", ""))
            targets = ref.findall(rp)
            self.require("deadLetterTargetArn" in rp and len(targets) == 1, w,
                         f"subscription {n}: redrive_policy with deadLetterTargetArn = a queue of this module "
                         "expected (SNS discards undeliverable messages without one)")
            endpoint = ref.findall(str(b.get("endpoint", "")))
            for q in targets:
                self.require(q in bodies, w, f"subscription {n}: SNS DLQ aws_sqs_queue.{q} not declared here")
                self.require(q not in worker_dlqs and q not in endpoint, w,
                             f"subscription {n}: the SNS DLQ must be a dedicated queue, not aws_sqs_queue.{q} "
                             "(SNS delivery failures must not mix with worker failures)")
                qb = bodies.get(q, {})
                self.require(qb.get("message_retention_seconds") == 1209600, w,
                             f"SNS DLQ aws_sqs_queue.{q}: message_retention_seconds must be 1209600 (14 days)")
                main_keys = {str(bodies[e].get("kms_master_key_id")) for e in endpoint if e in bodies}
                self.require(str(qb.get("kms_master_key_id")) in main_keys, w,
                             f"SNS DLQ aws_sqs_queue.{q}: must use the same KMS key as the queue")
                self.require(kms_sns, w, "the queue KMS key policy must let sns.amazonaws.com GenerateDataKey "
                             "with an aws:SourceArn condition (else SNS cannot write to the SNS DLQ either)")
                # Its queue policy: SNS may SendMessage to it, pinned to the topic.
                attached = [pn for pn, pb in queue_policies.items() if f"aws_sqs_queue.{q}.id" in str(pb.get("queue_url"))]
                allowed = False
                for pn in attached:
                    m = re.search(r"data\.aws_iam_policy_document\.(\w+)\.json", str(queue_policies[pn].get("policy")))
                    doc = docs.get(m.group(1), {}) if m else {}
                    for st in doc.get("statement", []):
                        if (st.get("effect", "Allow") == "Allow" and "sqs:SendMessage" in st.get("actions", [])
                                and f"aws_sqs_queue.{q}.arn" in str(st.get("resources"))
                                and any("sns.amazonaws.com" in pr.get("identifiers", []) for pr in st.get("principals", []))
                                and any(c.get("variable") == "aws:SourceArn" for c in st.get("condition", []))):
                            allowed = True
                self.require(allowed, w, f"SNS DLQ aws_sqs_queue.{q}: its queue policy must let sns.amazonaws.com "
                             "SendMessage with an aws:SourceArn condition")
                deps = str(b.get("depends_on", ""))
                self.require(any(f"aws_sqs_queue_policy.{pn}" in deps for pn in attached), w,
                             f"subscription {n}: depends_on must include the SNS DLQ's queue policy")
        outs = {label for _, label, _ in t.labelled("output")}
        for o in ("sns_dlq_url", "sns_dlq_arn", "sns_dlq_name"):
            self.require(o in outs, t.path, f"output {o} expected")

    def check_rds(self, t: Tree):
        for f, n, b in self.one(t, "aws_db_instance"):
            w = t.path / f
            self.require(b.get("engine") == "postgres", w, "engine must be postgres")
            expect_true = ("storage_encrypted", "manage_master_user_password",
                           "iam_database_authentication_enabled", "performance_insights_enabled",
                           "copy_tags_to_snapshot", "auto_minor_version_upgrade")
            for attr in expect_true:
                self.require(b.get(attr) is True, w, f"aws_db_instance.{n}: {attr} must be true")
            self.require(b.get("publicly_accessible") is False, w, "publicly_accessible must be false")
            for attr in ("multi_az", "deletion_protection", "backup_retention_period"):
                self.require(str(b.get(attr, "")).startswith("${var."), w,
                             f"aws_db_instance.{n}: {attr} must be a variable")
            self.require(bool(b.get("enabled_cloudwatch_logs_exports")), w, "log exports expected")
            self.require("kms_key_id" in b and "performance_insights_kms_key_id" in b, w,
                         "storage and Performance Insights must use the customer-managed key")
        force_ssl = False
        for _, _, b in self.one(t, "aws_db_parameter_group"):
            for p in b.get("parameter", []):
                if p.get("name") == "rds.force_ssl" and str(p.get("value")) == "1":
                    force_ssl = True
        self.require(force_ssl, t.path, "parameter group must set rds.force_ssl = 1")
        self.one(t, "aws_db_subnet_group")
        for f, n, b in self.one(t, "aws_vpc_security_group_ingress_rule"):
            self.require("referenced_security_group_id" in b, t.path / f,
                         f"ingress {n}: only from the given security groups")
        outs = " ".join(str(b.get("value")) for _, _, b in t.labelled("output"))
        self.require("master_user_secret" in outs, t.path, "the secret ARN must be an output")

    def check_eks(self, t: Tree):
        for f, n, b in self.one(t, "aws_eks_cluster"):
            w = t.path / f
            vpc = first(b.get("vpc_config"))
            self.require(vpc.get("endpoint_private_access") is True, w, "private endpoint must be on")
            self.require(str(vpc.get("endpoint_public_access", "")).startswith("${var."), w,
                         "public endpoint must be a variable")
            self.require("private" in str(vpc.get("subnet_ids")), w, "cluster ENIs in private subnets")
            enc = first(b.get("encryption_config"))
            self.require("secrets" in enc.get("resources", []), w, "Secrets envelope encryption expected")
            logs = set(b.get("enabled_cluster_log_types", []))
            self.require(logs >= {"api", "audit", "authenticator", "controllerManager", "scheduler"}, w,
                         "all control-plane log types expected")
        for f, n, b in self.one(t, "aws_eks_node_group"):
            self.require("private" in str(b.get("subnet_ids")), t.path / f, "nodes in private subnets")
        for f, n, b in self.one(t, "aws_launch_template"):
            md = first(b.get("metadata_options"))
            self.require(md.get("http_tokens") == "required", t.path / f, "IMDSv2 required on nodes")
        for rtype in ("aws_vpc", "aws_subnet", "aws_nat_gateway", "aws_internet_gateway", "aws_flow_log",
                      "aws_iam_openid_connect_provider", "aws_default_security_group", "aws_route"):
            self.one(t, rtype)
        for f, n, b in t.resources("aws_subnet"):
            self.require(b.get("map_public_ip_on_launch", False) is False, t.path / f,
                         f"aws_subnet.{n}: no public IPs on launch")
        nat_counts = [str(b.get("count", "")) for _, _, b in t.resources("aws_nat_gateway")]
        self.require(any("nat_count" in c or "single_nat_gateway" in c for c in nat_counts), t.path,
                     "NAT gateway count must follow single_nat_gateway")

    def check_iam(self, t: Tree):
        trust = [(n, b) for _, n, b in t.data("aws_iam_policy_document")
                 if any("sts:AssumeRoleWithWebIdentity" in s.get("actions", []) for s in b.get("statement", []))]
        self.require(bool(trust), t.path, "IRSA trust policy expected")
        actions = {}
        for _, n, b in t.data("aws_iam_policy_document"):
            actions[n] = {a for s in b.get("statement", []) if s.get("effect", "Allow") == "Allow"
                          for a in s.get("actions", [])}
        self.require(actions.get("api", set()) <= {"sns:Publish", "kms:GenerateDataKey", "kms:Decrypt"}
                     and "sns:Publish" in actions.get("api", set()), t.path,
                     f"api role may only publish: {sorted(actions.get('api', set()))}")
        allowed_worker = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                          "sqs:GetQueueAttributes", "kms:Decrypt", "secretsmanager:GetSecretValue"}
        self.require(actions.get("worker", set()) <= allowed_worker and "sqs:ReceiveMessage" in actions.get("worker", set()),
                     t.path, f"worker role has unexpected actions: {sorted(actions.get('worker', set()) - allowed_worker)}")

    def check_lambda(self, t: Tree):
        for f, n, b in self.one(t, "aws_lambda_function"):
            w = t.path / f
            self.require(b.get("runtime") == "provided.al2023", w, "runtime must be provided.al2023")
            self.require(b.get("handler") == "bootstrap", w, "handler must be bootstrap")
            self.require("architectures" in b and "reserved_concurrent_executions" in b, w,
                         "architectures and reserved_concurrent_executions expected")
            self.require(first(b.get("tracing_config")).get("mode") == "Active", w, "tracing must be Active")
            self.require(bool(first(b.get("vpc_config"))), w, "vpc_config expected")
            self.require("kms_key_arn" in b, w, "environment must be KMS-encrypted")
            env = str(first(b.get("environment")).get("variables", ""))
            self.require("local.latamctl_environment" in env, w,
                         "environment must include local.latamctl_environment (the binary's contract)")
        contract = {}
        for _, body in t.blocks("locals"):
            contract.update(body.get("latamctl_environment", {}) or {})
        for var in ("LATAMCTL_STORE", "LATAMCTL_DATABASE_HOST", "LATAMCTL_DATABASE_NAME",
                    "LATAMCTL_DATABASE_USER", "LATAMCTL_DATABASE_SECRET_ARN"):
            self.require(var in contract, t.path, f"environment variable {var} expected in local.latamctl_environment")
        self.require(contract.get("LATAMCTL_STORE") == "postgres", t.path, 'LATAMCTL_STORE must be "postgres"')
        self.require(not any("PASSWORD" in k for k in contract), t.path, "no password in the Lambda environment")
        for f, n, b in self.one(t, "aws_lambda_event_source_mapping"):
            w = t.path / f
            self.require("ReportBatchItemFailures" in b.get("function_response_types", []), w,
                         "event source mapping must report batch item failures")
            for attr in ("batch_size", "maximum_batching_window_in_seconds", "scaling_config"):
                self.require(attr in b, w, f"event source mapping must set {attr}")
        self.one(t, "aws_cloudwatch_log_group")

    def check_alarms(self, t: Tree):
        alarms = self.one(t, "aws_cloudwatch_metric_alarm")
        metrics = set()
        for f, n, b in alarms:
            w = t.path / f
            metrics.add(b.get("metric_name"))
            self.require(b.get("treat_missing_data") in ("missing", "notBreaching", "breaching", "ignore"), w,
                         f"alarm {n}: treat_missing_data must be set deliberately")
            self.require("alarm_actions" in b, w, f"alarm {n}: alarm_actions expected")
        for m in ("ApproximateAgeOfOldestMessage", "ApproximateNumberOfMessagesVisible", "CPUUtilization",
                  "FreeableMemory", "FreeStorageSpace", "NumberOfNotificationsFailed"):
            self.require(m in metrics, t.path, f"alarm on {m} expected")
        # Messages SNS could not deliver to the queue: always alarmed (no count), on any message.
        sns_dlq_alarm = any(b.get("metric_name") == "ApproximateNumberOfMessagesVisible"
                            and "var.sns_dlq_name" in str(b.get("dimensions", ""))
                            and b.get("comparison_operator") == "GreaterThanThreshold"
                            and b.get("threshold") == 0 and "count" not in b and "for_each" not in b
                            for _, _, b in alarms)
        self.require(sns_dlq_alarm, t.path,
                     "alarm on the SNS DLQ expected (ApproximateNumberOfMessagesVisible > 0 on var.sns_dlq_name)")
        for f, n, b in t.resources("aws_sns_topic"):
            self.require("kms_master_key_id" in b, t.path / f, f"aws_sns_topic.{n}: not KMS-encrypted")

    # -- environments ---------------------------------------------------------------------------

    def check_envs(self):
        compositions = {}
        for env in ("dev", "prod"):
            t = self.tree(f"envs/{env}")
            if t is None:
                continue
            w = t.path
            for f in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "backend.tf"):
                self.require(f in t.files, w, f"missing {f}")
            example = w / "terraform.tfvars.example"
            self.require(example.is_file(), w, "missing terraform.tfvars.example")
            declared = {label for _, label, _ in t.labelled("variable")}
            if example.is_file():
                try:
                    values = unquote(hcl2.loads(example.read_text()))
                    unknown = sorted(set(values) - declared)
                    self.require(not unknown, example, f"sets undeclared variables {unknown}")
                except Exception as exc:
                    self.require(False, example, f"HCL syntax error: {str(exc).splitlines()[0]}")
            compositions[env] = t.text.get("main.tf", "")
            tf = [b for _, b in t.blocks("terraform")]
            self.require(any("required_version" in b for b in tf), w, "required_version expected")
            aws = [first(b.get("required_providers")).get("aws", {}) for b in tf if "required_providers" in b]
            self.require(any(str(a.get("version", "")).startswith("~>") for a in aws), w,
                         "aws provider must be pinned with ~>")
            backends = [first(b.get("backend")) for b in tf if "backend" in b]
            self.require(any("s3" in b for b in backends), w, "S3 remote backend expected")
            providers = [b for _, label, b in t.labelled("provider") if label == "aws"]
            default_tags = first(providers[0].get("default_tags")) if providers else {}
            tags = default_tags.get("tags", {})
            self.require({"project", "environment", "system"} <= set(tags), w,
                         "provider default_tags must set project, environment, system")
            outs = {label for _, label, _ in t.labelled("output")}
            for o in ("topic_arn", "queue_url", "dlq_url", "sns_dlq_url", "sns_dlq_arn", "region", "db_endpoint",
                      "db_name", "db_user", "db_secret_arn", "cluster_name", "api_irsa_role_arn",
                      "worker_irsa_role_arn"):
                self.require(o in outs, w, f"output {o} expected")
            alarms_mod = [b for _, label, b in t.labelled("module") if label == "alarms"]
            self.require(any("module.sqs.sns_dlq_name" in str(b.get("sns_dlq_name", "")) for b in alarms_mod), w,
                         "module alarms must get sns_dlq_name = module.sqs.sns_dlq_name (the SNS DLQ alarm)")
            variables = {label: b for _, label, b in t.labelled("variable")}
            self.require(variables.get("name", {}).get("default") == "latam", w, 'variable name must default to "latam"')
            self.require(variables.get("environment", {}).get("default") == env, w,
                         f'variable environment must default to "{env}"')
        if len(compositions) == 2:
            self.require(compositions["dev"] == compositions["prod"], self.root / "envs",
                         "envs/dev/main.tf and envs/prod/main.tf must be identical (differences belong in variables)")
        prod = self.trees.get(self.root / "envs/prod")
        if prod:
            v = {label: b for _, label, b in prod.labelled("variable")}
            for name, want in (("db_multi_az", True), ("db_deletion_protection", True), ("single_nat_gateway", False)):
                self.require(v.get(name, {}).get("default") is want, prod.path / "variables.tf",
                             f"prod {name} must default to {str(want).lower()}")

    def run(self):
        n = self.load()
        self.check_all_trees()
        self.check_modules()
        self.check_envs()
        return n


# Each mutation breaks one invariant in a copy of the tree; the checker must then report a failure
# containing the expected text. Proves the check can fail (and keeps it from rotting silently).
MUTATIONS = [
    ("modules/sqs/main.tf", "raw_message_delivery = true", "raw_message_delivery = false", "raw_message_delivery"),
    ("modules/sqs/main.tf", "  redrive_policy = jsonencode({", "  redrive_policyx = jsonencode({", "redrive_policy"),
    ("modules/sqs/main.tf", 'variable = "aws:SourceArn"\n      values   = [var.topic_arn]\n    }\n  }\n\n  statement {\n    sid       = "DenyInsecureTransport"',
     'variable = "aws:SourceAccount"\n      values   = [var.topic_arn]\n    }\n  }\n\n  statement {\n    sid       = "DenyInsecureTransport"', "aws:SourceArn"),
    ("modules/rds/main.tf", "publicly_accessible    = false", "publicly_accessible    = true", "publicly_accessible"),
    ("modules/rds/main.tf", "manage_master_user_password   = true", 'password                      = "hunter2"', "password"),
    ("modules/rds/main.tf", 'name  = "rds.force_ssl"', 'name  = "rds.force_sslx"', "rds.force_ssl"),
    ("modules/rds/main.tf", "multi_az            = var.multi_az", "multi_az            = false", "multi_az"),
    ("modules/lambda/main.tf", '["ReportBatchItemFailures"]', "[]", "batch item failures"),
    ("modules/lambda/main.tf", 'runtime       = "provided.al2023"', 'runtime       = "provided.al2"', "provided.al2023"),
    ("modules/lambda/main.tf", "LATAMCTL_DATABASE_SECRET_ARN = var.database_secret_arn", "DATABASE_SECRET = var.database_secret_arn",
     "LATAMCTL_DATABASE_SECRET_ARN"),
    ("modules/iam/main.tf", 'actions   = ["sns:Publish"]', 'actions   = ["sns:*"]', "wildcard action"),
    ("modules/iam/main.tf", 'variable = "${var.oidc_issuer}:aud"', 'variable = "${var.oidc_issuer}:azp"', ":aud"),
    ("modules/eks/main.tf", "endpoint_private_access = true", "endpoint_private_access = false", "private endpoint"),
    ("modules/alarms/main.tf", 'treat_missing_data  = "missing"', "", "treat_missing_data"),
    ("modules/sns/variables.tf", '  description = "Suffix of the topic name', '  # description = "Suffix of the topic name', "no description"),
    ("modules/sns/main.tf", "enable_key_rotation     = true", "enable_key_rotation     = false", "enable_key_rotation"),
    ("envs/prod/main.tf", "  source = \"../../modules/sns\"", "  source = \"terraform-aws-modules/sns/aws\"", "not a local path"),
    ("envs/prod/variables.tf", "  default     = true\n}\n\nvariable \"db_skip_final_snapshot\"",
     "  default     = false\n}\n\nvariable \"db_skip_final_snapshot\"", "db_deletion_protection"),
    ("modules/sqs/outputs.tf", "output \"dlq_name\" {", "output \"dlq_name\" {{", "syntax error"),
    ("envs/dev/terraform.tfvars.example", "single_nat_gateway     = true", "single_nat_gw = true", "undeclared variables"),
    # The SNS DLQ (subscription redrive policy): each part of it must be noticed when broken.
    ("modules/sqs/main.tf", "  redrive_policy = jsonencode({\n    deadLetterTargetArn = aws_sqs_queue.sns_dlq.arn\n  })\n", "",
     "SNS discards undeliverable messages"),
    ("modules/sqs/main.tf", "    deadLetterTargetArn = aws_sqs_queue.sns_dlq.arn", "    deadLetterTargetArn = aws_sqs_queue.dlq.arn",
     "dedicated queue"),
    ("modules/sqs/main.tf", "message_retention_seconds         = 1209600 # 14 days",
     "message_retention_seconds         = 345600 # 4 days", "1209600 (14 days)"),
    ("modules/sqs/main.tf", 'variable = "aws:SourceArn"\n      values   = [var.topic_arn]\n    }\n  }\n\n  statement {\n    sid       = "DenyInsecureTransport"\n    effect    = "Deny"\n    actions   = ["sqs:*"]\n    resources = [aws_sqs_queue.sns_dlq.arn]',
     'variable = "aws:SourceAccount"\n      values   = [var.topic_arn]\n    }\n  }\n\n  statement {\n    sid       = "DenyInsecureTransport"\n    effect    = "Deny"\n    actions   = ["sqs:*"]\n    resources = [aws_sqs_queue.sns_dlq.arn]',
     "SNS DLQ aws_sqs_queue.sns_dlq: its queue policy"),
    ("modules/sqs/main.tf", "kms_master_key_id                 = aws_kms_key.queue.arn\n  kms_data_key_reuse_period_seconds = 300\n\n  # Only SNS",
     "kms_master_key_id                 = \"alias/aws/sqs\"\n  kms_data_key_reuse_period_seconds = 300\n\n  # Only SNS", "same KMS key"),
    ("modules/sqs/main.tf", "depends_on = [aws_sqs_queue_policy.this, aws_sqs_queue_policy.sns_dlq]",
     "depends_on = [aws_sqs_queue_policy.this]", "SNS DLQ's queue policy"),
    ("modules/alarms/main.tf", "QueueName = var.sns_dlq_name", "QueueName = var.dlq_name", "alarm on the SNS DLQ"),
    ("envs/prod/main.tf", "  sns_dlq_name                               = module.sqs.sns_dlq_name\n", "", "sns_dlq_name = module.sqs"),
    ("envs/dev/outputs.tf", 'output "sns_dlq_url" {', 'output "sns_dlq_queue_url" {', "output sns_dlq_url expected"),
]


def self_test(root: Path) -> int:
    import shutil
    import tempfile

    failures = 0
    with tempfile.TemporaryDirectory(prefix="check-hcl-") as tmp:
        for rel, old, new, expect in MUTATIONS:
            copy = Path(tmp) / "terraform"
            if copy.exists():
                shutil.rmtree(copy)
            shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
            target = copy / rel
            text = target.read_text()
            if old not in text:
                print(f"SELF-TEST BROKEN {rel}: pattern {old[:60]!r} not found (update MUTATIONS)")
                failures += 1
                continue
            target.write_text(text.replace(old, new, 1))
            checker = Checker(copy.resolve())
            checker.run()
            hit = [e for e in checker.errors if expect in e]
            if not hit:
                print(f"SELF-TEST MISSED {rel}: {old[:50]!r} -> {new[:50]!r} (expected {expect!r}; got {checker.errors[:3]})")
                failures += 1
    print(f"hcl self-test: {len(MUTATIONS)} mutations, {len(MUTATIONS) - failures} caught")
    return 1 if failures else 0


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    root = Path(args[0]) if args else Path(__file__).resolve().parent.parent / "terraform"
    if "--self-test" in argv:
        return self_test(root.resolve())
    checker = Checker(root.resolve())
    files = checker.run()
    for e in checker.errors:
        print(f"FAIL {e}")
    print(f"hcl: {files} files parsed, {checker.checks} checks, {len(checker.errors)} failed")
    return 1 if checker.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
