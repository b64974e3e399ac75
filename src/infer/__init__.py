"""Stage 3, inference: per-window logits, post-processing into answer spans and texts, precision, the metric.
"""
