"""spark-submit entry point of ``mlpipe step features``."""

import sys

from pipelines.cli import run_job


def main(argv: list[str] | None = None) -> int:
    return run_job("features", argv)


if __name__ == "__main__":
    sys.exit(main())
