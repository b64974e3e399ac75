"""A synthetic but learnable QA task in Hindi and Tamil script, for tests that must see learning happen.

Each context lists facts about `people` persons (birthplace, year of death, profession) mixed with distractor
sentences that mention other values of the same types (another city, another year, another profession); the
question asks for one fact of one person, so the model has to read the relation, not just find "the city".
"""
from __future__ import annotations

import hashlib
import random

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
