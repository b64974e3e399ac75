import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from src.infer.span_text import span_texts

# 1-, 2-, 3- and 4-byte UTF-8 characters, Devanagari and Tamil combining marks among them
ALPHABET = list("ab 1.") + list("éñß") + list("राम का जन्म") + list("கி.பி தமிழ்") + ["😀", "𝔸"]


def python_slices(contexts, spans):
    return ["" if a < 0 else c[a:b] for c, (a, b) in zip(contexts, spans, strict=True)]


def random_case(rng, n=200):
    contexts = ["".join(rng.choice(ALPHABET, rng.integers(0, 80))) for _ in range(n)]
    spans = []
    for c in contexts:
        a = int(rng.integers(-1, len(c) + 3))
        spans.append((a, max(0, a + int(rng.integers(-2, 12)))))   # out of range, empty and reversed spans too
    return contexts, np.array(spans)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("dtype", ["str", "object", "string[pyarrow]", "large_string[pyarrow]"])
def test_span_texts_equal_python_slicing(seed, dtype):
    contexts, spans = random_case(np.random.default_rng(seed))
    if dtype == "large_string[pyarrow]":
        col = pd.Series(contexts, dtype=pd.ArrowDtype(pa.large_string()))
    else:
        col = pd.Series(contexts, dtype=dtype)
    assert span_texts(col, spans) == python_slices(contexts, spans)
    # a slice of a column (the Arrow array starts at an offset) and a list
    assert span_texts(col.iloc[37:150], spans[37:150]) == python_slices(contexts[37:150], spans[37:150])
    assert span_texts(contexts, spans) == python_slices(contexts, spans)


def test_span_texts_chunked_and_empty():
    contexts, spans = random_case(np.random.default_rng(7), n=50)
    chunked = pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array([contexts[:20], contexts[20:]])))
    assert span_texts(chunked, spans) == python_slices(contexts, spans)
    assert span_texts(pd.Series(["", ""], dtype="str"), np.array([[0, 3], [-1, -1]])) == ["", ""]
    with pytest.raises(ValueError, match="3 contexts but 2 spans"):
        span_texts(pd.Series(["a", "b", "c"], dtype="str"), np.array([[0, 1], [0, 1]]))
