"""Kaggle kernels: the command line.

    python -m src.kaggle_kernels build [--user NAME] [--counts muril-large=3,rembert=5,xlm-roberta-large-squad2=5]
                                       [--set epochs=1] [--no-wheels]              # -> kernels/<slug>/
    python -m src.kaggle_kernels push                                              # kaggle kernels push -p DIR
    python -m src.kaggle_kernels status [--wait]                                   # kaggle kernels status ID

The work is in `kernel_metadata` (metadata checks), `kernel_plan` (which kernels, parameters, sources),
`kernel_build` (notebooks and folders), `kaggle_cli` (credentials, push, status, this command line) and
`wheels` (the offline wheels dataset).
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from .kaggle_cli import main as cli_main  # lazily: importing this module stays cheap

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
