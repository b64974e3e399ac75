"""Benchmarks: inference per precision against the reference pipeline, post-processing, blend memory,
length-grouped training, bf16 vs fp32, and the models they measure.
"""
