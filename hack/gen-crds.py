#!/usr/bin/env python3
"""The Notification CRD, generated from the provider registry, and its copies.

    python hack/gen-crds.py            # print the generated CRD
    python hack/gen-crds.py --write    # write crds/ and the copies in the chart and kustomize base
    python hack/gen-crds.py --check    # exit 1 when any of them is out of date

tests/unit/test_provider_registry.py runs the check, so a provider change without `--write`
fails `make test`. The DeployJob CRD is written by hand; `--write` copies it too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "hack" / "crds" / "notifications.base.yaml"
TARGET = "deploybell.io_notifications.yaml"
COPIES = (
    ROOT / "manifests" / "helm" / "deploybell" / "crds",
    ROOT / "manifests" / "install" / "crds",
)


def generated() -> str:
    from deploybell.notify.providers import CATALOGUE
    from deploybell.tools.crds import dump, notification_crd

    return dump(notification_crd(yaml.safe_load(BASE.read_text()), CATALOGUE))


def wanted() -> dict[Path, str]:
    """Every CRD file there should be, with its content."""
    files = {ROOT / "crds" / TARGET: generated()}
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        files.setdefault(path, path.read_text())
    for directory in COPIES:
        for source, text in list(files.items()):
            if source.parent == ROOT / "crds":
                files[directory / source.name] = text
    return files


def stale() -> list[Path]:
    return [p for p, text in wanted().items() if not p.exists() or p.read_text() != text]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="write crds/ and the copies")
    action.add_argument("--check", action="store_true", help="exit 1 when a file is out of date")
    args = parser.parse_args()
    if args.write:
        for path, text in wanted().items():
            path.write_text(text)
        return 0
    if args.check:
        out = stale()
        for path in out:
            print(f"out of date: {path.relative_to(ROOT)} (run hack/gen-crds.py --write)")
        return 1 if out else 0
    sys.stdout.write(generated())
    return 0


if __name__ == "__main__":
    sys.exit(main())
