#!/usr/bin/env python3
"""Print, as JSON, the IAM actions each latamctl principal is granted by the Terraform:

    {"api": [...], "worker": [...], "lambda": [...], "operator": [...]}

Read from the policy documents themselves (python-hcl2), so the tests that run each role with
exactly these actions (tests/it/iam/) and the README's table follow the .tf files. Only
Allow statements count; the IRSA/Lambda trust policies and KMS key policies are not grants to
the principal.

    iam_actions.py [TERRAFORM_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hcl2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_hcl import unquote  # noqa: E402

# principal -> (file under terraform/, aws_iam_policy_document label)
PRINCIPALS = {
    "api": ("modules/iam/main.tf", "api"),
    "worker": ("modules/iam/main.tf", "worker"),
    "lambda": ("modules/lambda/main.tf", "this"),
    "operator": ("modules/iam/operator.tf", "operator"),
}


def policy_actions(path: Path, label: str) -> list[str]:
    with path.open() as f:
        doc = unquote(hcl2.load(f))
    for entry in doc.get("data", []):
        body = entry.get("aws_iam_policy_document", {}).get(label)
        if body is None:
            continue
        actions = {
            a
            for st in body.get("statement", [])
            if st.get("effect", "Allow") == "Allow"
            for a in st.get("actions", [])
        }
        return sorted(actions)
    raise SystemExit(f"{path}: no data \"aws_iam_policy_document\" \"{label}\"")


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "terraform"
    out = {name: policy_actions(root / rel, label) for name, (rel, label) in PRINCIPALS.items()}
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
