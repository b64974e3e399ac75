"""Kaggle kernels: the plan (which kernels, which parameters), building kernel folders, metadata checks, the offline
wheels dataset and its install cell, the kaggle CLI (push, status), and the chain of kernels that fetch their own
inputs (`make reproduce`: sources, fetch, data kernels, chain, reproduce).

    python -m src.kaggle build|push|status ...
    python -m src.kaggle.reproduce --user NAME [--dry-run]
"""
