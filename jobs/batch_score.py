"""spark-submit entry point of ``mlpipe step batch_score``."""

import sys

from pipelines.cli import run_job


def main(argv: list[str] | None = None) -> int:
    return run_job("batch_score", argv)


if __name__ == "__main__":
    sys.exit(main())
