"""chaii-recipes: the 1st-place chaii (Hindi/Tamil QA) recipe as small, tested modules.

Data flows one way: input CSV -> `data` (validated frame) -> `features` (windows, labels) -> `train`
-> `predict` (per-window logits) -> `postprocess` / `blend` -> `submission`.
"""
