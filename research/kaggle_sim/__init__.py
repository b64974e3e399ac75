"""The Kaggle simulation: built kernels run offline in a simulated /kaggle tree (`make e2e`).
"""
