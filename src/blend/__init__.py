"""Stage 4, blending and submission: token/char-level blends and the vote, fitting them on out-of-fold
predictions, blend.json, the ensemble over model folders, and `submission.csv`.
"""
