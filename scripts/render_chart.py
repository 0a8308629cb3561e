#!/usr/bin/env python3
"""Render a Helm chart offline (helm-python-sdk, no helm binary) and print its objects as JSON.

Used by the Rust tests (tests/it/kubernetes/mod.rs) to build the fake Kubernetes API server
from what the chart really renders for each values file, so the fixture is the artifact.

Usage: render_chart.py CHART [--values FILE]... [--set KEY=VALUE]... [--release NAME]
                       [--namespace NS]
Prints a JSON array of every rendered object (NOTES.txt and empty documents left out).
Exit: 0 rendered, 1 the chart refused the values (the error on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

import helm_python as helm


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("chart", type=Path)
    p.add_argument("--values", action="append", type=Path, default=[])
    p.add_argument("--set", action="append", default=[], dest="sets")
    p.add_argument("--release", default="latamctl")
    p.add_argument("--namespace", default="latam")
    args = p.parse_args()

    values: dict = {}
    for f in args.values:
        values = merge(values, helm.values_from_yaml(f.read_text()) or {})
    for s in args.sets:
        values = merge(values, helm.parse_set_string(s))
    try:
        with helm.Chart.load(str(args.chart)) as chart:
            rendered = chart.render(values or None, name=args.release, namespace=args.namespace, is_install=True)
    except helm.HelmError as e:
        print(f"render failed: {e}", file=sys.stderr)
        return 1
    objects = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects.append(doc)
    json.dump(objects, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
