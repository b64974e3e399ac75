"""Where things are (Kaggle, Colab, local) and atomic file writes: what every stage below uses.
"""
