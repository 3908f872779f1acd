"""`python -m serving MODEL_URI [--watch] [--port 8081 ...]`: serve without the project CLI.

Each setting of conf/serving.yaml has a flag of the same name (`max_batch_size` ->
`--max-batch-size`); a flag overrides the file, and the file holds every default.
MLflow's tracking and registry URIs come from MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import yaml

from serving.server import serve
from serving.settings import DEFAULT_CONF, ServingSettings, load_settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_uri", metavar="MODEL_URI",
                        help="models:/<name>@<alias>, models:/<name>/<version>, runs:/<id>/model")
    parser.add_argument("--watch", action="store_true",
                        help="follow the alias and swap in new versions")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONF,
                        help="YAML file with a top-level `serving:` key")
    for name in ServingSettings.model_fields:
        # Values are YAML, so `--allowed-batch-sizes "[1, 8, 64]"` works like the file.
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=yaml.safe_load,
                            help=f"overrides serving.{name}")
    return parser.parse_args(argv)


def settings_from_args(args: argparse.Namespace) -> ServingSettings:
    """The file's settings with the flags that were given applied on top."""
    overrides = {name: getattr(args, name) for name in ServingSettings.model_fields
                 if getattr(args, name) is not None}
    return load_settings(args.config, **overrides)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = settings_from_args(args)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(args.model_uri, settings, watch=args.watch)


if __name__ == "__main__":
    main()
