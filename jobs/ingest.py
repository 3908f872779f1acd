"""spark-submit entry point of ``mlpipe step ingest``."""

import sys

from pipelines.cli import run_job


def main(argv: list[str] | None = None) -> int:
    return run_job("ingest", argv)


if __name__ == "__main__":
    sys.exit(main())
