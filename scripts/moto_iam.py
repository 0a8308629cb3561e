#!/usr/bin/env python3
"""IAM users on a moto server that enforces IAM (started with INITIAL_NO_AUTH_ACTION_COUNT=3).

    moto_iam.py bootstrap URL
        The first three requests are unauthenticated: create the user "admin", give it
        {"Action": "*", "Resource": "*"}, create its access key. Prints {"id", "secret"}.
    moto_iam.py user URL ADMIN_ID ADMIN_SECRET NAME [ACTION...]
        With the admin's keys: a user NAME whose only policy allows exactly ACTION... on
        Resource "*" (moto matches actions, not resource ARNs: resource scoping is checked
        statically by scripts/check_hcl.py). Prints {"id", "secret"}.

Run with the moto venv's Python (boto3 comes with moto).
"""

from __future__ import annotations

import json
import sys

import boto3


def iam(url: str, key_id: str, secret: str):
    return boto3.client(
        "iam",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )


def user(client, name: str, actions: list[str]) -> dict:
    client.create_user(UserName=name)
    if actions:
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
        client.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))
    key = client.create_access_key(UserName=name)["AccessKey"]
    return {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "bootstrap":
        # Exactly three requests before moto starts authenticating.
        print(json.dumps(user(iam(argv[2], "bootstrap", "bootstrap"), "admin", ["*"])))
        return 0
    if len(argv) >= 6 and argv[1] == "user":
        _, _, url, key_id, secret, name, *actions = argv
        print(json.dumps(user(iam(url, key_id, secret), name, actions)))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
