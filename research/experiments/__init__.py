"""Experiments on real data (../shared/data): the leak-free evaluation sets, the QA base, the ablation,
the blend check and the inference settings.
"""
