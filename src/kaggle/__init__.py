"""Kaggle kernels: the plan (which kernels, which parameters), building offline kernel folders, metadata
checks, the offline wheels dataset and its install cell, and the kaggle CLI (push, status).

    python -m src.kaggle build|push|status ...
"""
