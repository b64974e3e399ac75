"""A synthetic but learnable QA task in Hindi and Tamil script, for tests that must see learning happen.

Each context lists facts about `people` persons (birthplace, year of death, profession) mixed with distractor
sentences that mention other values of the same types (another city, another year, another profession); the
question asks for one fact of one person, so the model has to read the relation, not just find "the city".
"""
from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

import pandas as pd

VOCAB = {
    "hindi": dict(
        names=["राम", "श्याम", "मोहन", "सीता", "गीता", "अनिल", "सुनील", "प्रिया", "रीना", "विकास", "अमित", "पूजा",
               "राधा", "किशन", "मीरा", "अर्जुन"],
        places=["दिल्ली", "मुंबई", "पटना", "जयपुर", "लखनऊ", "भोपाल", "कानपुर", "इंदौर", "वाराणसी", "आगरा", "नागपुर",
                "शिमला"],
        jobs=["कवि", "लेखक", "वैज्ञानिक", "चित्रकार", "गायक", "डॉक्टर", "शिक्षक", "किसान", "इंजीनियर", "वकील"],
        facts={
            "place": ("{n} का जन्म {v} में हुआ था।", "{n} का जन्म कहाँ हुआ था?"),
            "year": ("{n} की मृत्यु सन {v} में हुई।", "{n} की मृत्यु किस वर्ष हुई?"),
            "job": ("{n} एक प्रसिद्ध {v} थे।", "{n} का पेशा क्या था?"),
        },
        distractors={"place": "{v} एक सुंदर शहर है।", "year": "सन {v} में वहाँ बाढ़ आई थी।",
                     "job": "हर {v} मेहनत करता है।"},
    ),
    "tamil": dict(
        names=["ராமன்", "கண்ணன்", "முருகன்", "லட்சுமி", "மீனா", "செல்வி", "அருண்", "விஜய்", "கார்த்திக்", "பிரியா",
               "சுரேஷ்", "கவிதா", "பாலு", "தேவி", "ரவி", "அனிதா"],
        places=["சென்னை", "மதுரை", "கோயம்புத்தூர்", "திருச்சி", "சேலம்", "தஞ்சாவூர்", "வேலூர்", "நெல்லை", "ஈரோடு",
                "கன்னியாகுமரி", "காஞ்சிபுரம்", "ஊட்டி"],
        jobs=["மருத்துவர்", "ஆசிரியர்", "கவிஞர்", "விஞ்ஞானி", "ஓவியர்", "பாடகர்", "விவசாயி", "பொறியாளர்", "வழக்கறிஞர்",
              "எழுத்தாளர்"],
        facts={
            "place": ("{n} {v} நகரில் பிறந்தார்.", "{n} எங்கே பிறந்தார்?"),
            "year": ("{n} {v} ஆம் ஆண்டில் இறந்தார்.", "{n} எந்த ஆண்டில் இறந்தார்?"),
            "job": ("{n} ஒரு புகழ்பெற்ற {v} ஆவார்.", "{n} என்ன தொழில் செய்தார்?"),
        },
        distractors={"place": "{v} ஒரு அழகான நகரம்.", "year": "{v} ஆம் ஆண்டில் பெரிய வெள்ளம் வந்தது.",
                     "job": "ஒவ்வொரு {v} கடினமாக உழைக்கிறார்."},
    ),
}


def _value(rng: random.Random, vocab: dict, relation: str) -> str:
    if relation == "place":
        return rng.choice(vocab["places"])
    if relation == "year":
        return str(rng.randint(1800, 1999))
    return rng.choice(vocab["jobs"])


def make_synthetic_qa(n: int, seed: int = 0, people: int = 1, languages=("hindi", "tamil")) -> pd.DataFrame:
    """`n` rows in the chaii train frame format (id, context, question, answer_text, answer_start, language, source)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        lang = languages[i % len(languages)]
        vocab = VOCAB[lang]
        persons = rng.sample(vocab["names"], people)
        facts = [(p, rel, _value(rng, vocab, rel)) for p in persons for rel in vocab["facts"]]
        target = rng.choice(facts)
        facts += [(None, rel, _value(rng, vocab, rel)) for rel in vocab["distractors"]]
        rng.shuffle(facts)
        sentences, answer_start = [], -1
        for fact in facts:
            person, rel, value = fact
            template = vocab["facts"][rel][0] if person else vocab["distractors"][rel]
            sentence = template.format(n=person, v=value)
            offset = sum(len(s) + 1 for s in sentences)
            if fact is target:
                answer_start = offset + sentence.index(value, template.index("{v}") - len("{n}") + len(person))
            sentences.append(sentence)
        context = " ".join(sentences)
        question = vocab["facts"][target[1]][1].format(n=target[0])
        assert context[answer_start:answer_start + len(target[2])] == target[2]
        rid = hashlib.md5(f"{seed}-{i}".encode()).hexdigest()[:9]
        rows.append(dict(id=rid, context=context, question=question, answer_text=target[2],
                         answer_start=answer_start, language=lang, source="synthetic"))
    return pd.DataFrame(rows)


def synthetic_corpus() -> list[str]:
    """Text covering the generator's vocabulary, so that tiny tokenizers know its words."""
    df = make_synthetic_qa(400, seed=12345)
    return df["context"].tolist() + df["question"].tolist()


# ---- a raw Natural Questions sample and reference questions, for the NQ subset pipeline (python -m src.data.nq) ---
CITIES = ["Agra", "Pune", "Madurai", "Kochi", "Mysore", "Surat", "Nagpur", "Salem", "Indore", "Patna", "Ranchi",
          "Shimla", "Jaipur", "Vellore", "Erode", "Bhopal", "Kanpur", "Udaipur", "Jodhpur", "Trichy"]
FOUNDERS = ["Akbar", "Ashoka", "Shivaji", "Raja Raja", "Tipu Sultan", "Harsha", "Chandragupta", "Babur"]
COUNTRIES = ["India", "Nepal", "Sri Lanka", "Bangladesh"]
# What a TyDi/chaii question looks like (asked without seeing the text) and what a reading-comprehension one does:
# the similarity classifier of src/data/nq.py has to tell them apart.
TARGET_STYLE = {"year": "when was {c} founded", "founder": "who founded the city of {c}",
                "country": "which country is {c} in"}
OTHER_STYLE = {"year": "according to the passage , in what year did the text say {c} was founded",
               "founder": "in the paragraph above , what does the author name as the founder of {c}",
               "country": "based on the text , the passage places {c} in which country"}


def _city_facts(rng: random.Random, i: int) -> dict:
    city = f"{CITIES[i % len(CITIES)]}{'' if i < len(CITIES) else f' {i // len(CITIES) + 1}'}"
    return dict(city=city, year=str(rng.randint(1100, 1900)), founder=rng.choice(FOUNDERS),
                country=rng.choice(COUNTRIES))


def _city_sentences(f: dict) -> dict[str, str]:
    return {"year": f"{f['city']} was founded in {f['year']} .", "founder": f"Its founder was {f['founder']} .",
            "country": f"Today {f['city']} is a city of {f['country']} ."}


def nq_sample_records(n: int = 40, seed: int = 0) -> list[dict]:
    """`n` records in the simplified Natural Questions schema (document_text with HTML tag tokens,
    long_answer_candidates, annotations with short_answers token spans): every other question is target-like,
    and every fifth record has no short answer (long answer only, yes/no, or none), as in the real file."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        f = _city_facts(rng, i)
        sentences = _city_sentences(f)
        relation = rng.choice(sorted(sentences))
        style = TARGET_STYLE if i % 2 == 0 else OTHER_STYLE
        tokens = ["<H1>", *f["city"].split(), "</H1>", "<P>"]
        long_start = len(tokens) - 1
        short = None
        for rel, sentence in sentences.items():
            words = sentence.split()
            if rel == relation:
                value = f[relation].split()
                at = next(j for j in range(len(words)) if words[j:j + len(value)] == value)
                short = (len(tokens) + at, len(tokens) + at + len(value))
            tokens += words
        tokens.append("</P>")
        long_span = (long_start, len(tokens))
        tokens += ["<P>", "It", "has", "many", "temples", ".", "</P>"]
        kind = i % 5
        annotation = {"annotation_id": 10_000 + i, "yes_no_answer": "NONE",
                      "long_answer": {"start_token": long_span[0], "end_token": long_span[1], "candidate_index": 0},
                      "short_answers": [{"start_token": short[0], "end_token": short[1]}]}
        if kind == 4:  # the real file's other outcomes: long answer only, yes/no, no answer
            annotation["short_answers"] = []
            if i % 3 == 1:
                annotation["yes_no_answer"] = "YES"
            elif i % 3 == 2:
                annotation["long_answer"] = {"start_token": -1, "end_token": -1, "candidate_index": -1}
        title = f["city"].replace(" ", "_")
        records.append({
            "example_id": 5_000_000 + i, "question_text": style[relation].format(c=f["city"]),
            "document_text": " ".join(tokens),
            "document_url": f"https://en.wikipedia.org//w/index.php?title={title}&amp;oldid={900 + i}",
            "long_answer_candidates": [{"start_token": long_span[0], "end_token": long_span[1], "top_level": True},
                                       {"start_token": long_span[1], "end_token": len(tokens), "top_level": True}],
            "annotations": [annotation]})
    return records


def write_nq_sample(path: str | os.PathLike, n: int = 40, seed: int = 0) -> Path:
    """A small raw NQ simplified JSONL file (see `nq_sample_records`), one record a line; written atomically."""
    from src.common.io import write_text

    return write_text("".join(json.dumps(r) + "\n" for r in nq_sample_records(n, seed)), path)


def write_reference_questions(path: str | os.PathLike, style: str, n: int = 40, seed: int = 0) -> Path:
    """SQuAD-layout questions for `python -m src.data.nq --target/--other`: `style="target"` (TyDi-like) or `"other"`
    (reading-comprehension), about other cities than the NQ sample's."""
    from src.common.io import write_json

    templates = {"target": TARGET_STYLE, "other": OTHER_STYLE}.get(style)
    if templates is None:
        raise ValueError(f"style must be 'target' or 'other', got {style!r}")
    rng = random.Random(seed + 7919)
    data = []
    for i in range(n):
        f = _city_facts(rng, i)
        f["city"] = f"New {f['city']}"
        context = " ".join(_city_sentences(f).values())
        relation = rng.choice(sorted(templates))
        data.append({"title": f["city"], "paragraphs": [{"context": context, "qas": [{
            "id": f"{style}-{seed}-{i}", "question": templates[relation].format(c=f["city"]),
            "answers": [{"text": f[relation], "answer_start": context.index(f[relation])}]}]}]})
    return write_json({"version": f"synthetic-{style}", "data": data}, path)
