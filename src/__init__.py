"""chaii-recipes: the 1st-place chaii (Hindi/Tamil QA) recipe as small, tested modules, one package per stage.

Data flows one way, and imports run the other way only (`pyproject.toml`'s import contract):
`data` (validated frame, windows) -> `train` (recipe, Trainer, one fold) -> `infer` (per-window logits, answers)
-> `blend` (blends, vote, `submission.csv`); `notebooks` runs the numbered notebooks, `kaggle` builds the kernels;
`common` (paths, atomic writes) sits under all of them.
"""
