"""spark-submit entry point of ``mlpipe step train_regression``."""

import sys

from pipelines.cli import run_job


def main(argv: list[str] | None = None) -> int:
    return run_job("train_regression", argv)


if __name__ == "__main__":
    sys.exit(main())
