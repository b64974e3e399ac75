import pandas as pd

from src.data.features import frame_to_batch, prepare_eval_features, prepare_train_features
from src.data.synthetic import make_synthetic_qa


def long_frame() -> pd.DataFrame:
    """Contexts of several windows; answers early, late, at the very end, and glued to punctuation."""
    df = make_synthetic_qa(40, seed=7)
    filler = " ".join(make_synthetic_qa(12, seed=8)["context"])
    df["context"] = [filler + " " + c for c in df["context"]]
    df["answer_start"] = df["answer_start"] + len(filler) + 1
    extra = pd.DataFrame([
        dict(id="edge-end", context=filler + " अंत में दिल्ली", question="अंत में क्या है?", answer_text="दिल्ली",
             answer_start=len(filler) + len(" अंत में "), language="hindi", source="test"),
        dict(id="glued", context="विद्रोह (1857), " + filler, question="विद्रोह कब हुआ?", answer_text="1857",
             answer_start=len("विद्रोह ("), language="hindi", source="test"),
        dict(id="start", context="சென்னை நகரம். " + filler, question="எந்த நகரம்?", answer_text="சென்னை",
             answer_start=0, language="tamil", source="test"),
    ])
    return pd.concat([df, extra], ignore_index=True)


def test_labels_point_at_the_answer(tokenizer):
    df = long_frame()
    feats = prepare_train_features(frame_to_batch(df), tokenizer, max_length=96, doc_stride=32)
    enc = tokenizer(df["question"].tolist(), df["context"].tolist(), truncation="only_second", max_length=96,
                    stride=32, return_overflowing_tokens=True, return_offsets_mapping=True)
    by_id = df.set_index("id")
    assert len(feats["input_ids"]) > 2 * len(df)          # several windows per context
    assert set(feats["example_id"]) == set(df["id"])
    positives = 0
    for i, (s, e, eid) in enumerate(zip(feats["start_positions"], feats["end_positions"], feats["example_id"],
                                        strict=True)):
        cls = feats["input_ids"][i].index(tokenizer.cls_token_id)
        if not feats["has_answer"][i]:
            assert s == e == cls
            continue
        positives += 1
        offsets = enc["offset_mapping"][i]
        assert enc.sequence_ids(i)[s] == 1 and enc.sequence_ids(i)[e] == 1  # inside the context
        decoded = by_id.loc[eid, "context"][offsets[s][0]:offsets[e][1]]
        answer = by_id.loc[eid, "answer_text"]
        # a token may carry glued punctuation ("1857),"); the answer must be all of it but such residue
        assert answer in decoded and len(decoded.strip()) - len(answer) <= 2, (eid, decoded, answer)
    # every example has its answer in at least one window (stride keeps answers whole somewhere)
    assert positives >= len(df)
    ids_with_answer = {eid for eid, h in zip(feats["example_id"], feats["has_answer"], strict=True) if h}
    assert ids_with_answer == set(df["id"])


def test_answer_at_last_context_token_is_not_labelled_sep(tokenizer):
    """run_qa.py's loop walks past the context into [SEP] here; ours must not."""
    ctx = "राम का जन्म अयोध्या में हुआ। " * 3 + "अंत दिल्ली"
    df = pd.DataFrame([dict(id="x", context=ctx, question="अंत?", answer_text="दिल्ली", answer_start=ctx.rindex("दिल्ली"),
                            language="hindi")])
    feats = prepare_train_features(frame_to_batch(df), tokenizer, max_length=64, doc_stride=16)
    ok = [(s, e) for s, e, h in zip(feats["start_positions"], feats["end_positions"], feats["has_answer"], strict=True)
          if h]
    assert ok and all(s <= e for s, e in ok)


def test_eval_offsets_only_on_context(tokenizer):
    df = long_frame().head(5)
    feats = prepare_eval_features(frame_to_batch(df[["id", "question", "context"]]), tokenizer, 96, 32)
    for i, offsets in enumerate(feats["offset_mapping"]):
        ids = feats["input_ids"][i]
        assert offsets[0] is None                          # CLS
        assert offsets[ids.index(tokenizer.sep_token_id)] is None
        context_tokens = [o for o in offsets if o is not None]
        assert context_tokens and all(a <= b for a, b in context_tokens)


def test_long_question_is_cut_to_leave_room_for_the_context(tokenizer):
    """A question longer than max_length - doc_stride made the fast tokenizer panic (TyDi has such questions)."""
    from src.data.features import fit_questions

    df = long_frame().head(3).copy()
    df.loc[0, "question"] = "भारत के किस राज्य में " * 40 + df.loc[0, "question"]
    feats = prepare_train_features(frame_to_batch(df), tokenizer, max_length=64, doc_stride=24)
    assert set(feats["example_id"]) == set(df["id"])
    for first, last in zip(feats["context_start"], feats["context_end"], strict=True):
        assert last - first + 1 > 24                      # each window keeps more context than the stride
    assert any(h for h, eid in zip(feats["has_answer"], feats["example_id"], strict=True) if eid == df.loc[0, "id"])
    eval_feats = prepare_eval_features(frame_to_batch(df[["id", "question", "context"]]), tokenizer, 64, 24)
    assert set(eval_feats["example_id"]) == set(df["id"])
    cut = fit_questions(df["question"].tolist(), tokenizer, 64, 24)
    assert cut[1:] == df["question"].tolist()[1:]          # questions that fit are untouched
    assert df.loc[0, "question"].startswith(cut[0]) and len(cut[0]) < len(df.loc[0, "question"])
