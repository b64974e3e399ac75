"""Stage 2, training: the backbone registry, the data recipe and its augmentations, the thin Trainer and
`train_fold`, and the experiment log.
"""
