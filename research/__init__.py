"""The research harness: benchmarks, blend checks and ablations that measure the `src` library.

It imports `src`; `src` never imports it, and the Kaggle kernel builder inlines only `src`.
"""
