"""Stage 1, data: chaii CSVs and external QA sources as one validated frame, the NQ subset, synthetic
data for tests, and the sliding-window features every model reads.
"""
