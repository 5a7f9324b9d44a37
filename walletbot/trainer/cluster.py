"""Grouping similar short texts: TF-IDF over character 1-2-grams, cosine similarity.

Leader clustering: texts are taken most frequent first; each joins the first
group whose leader it resembles at least ``threshold``, or starts a new one.
Deterministic, and fine for the few thousand lines a review holds.
"""

from __future__ import annotations

import re
from typing import List, Sequence

# Chosen on short Chinese questions: 卡被吞了怎么办 / 卡被ATM吞了怎么办啊 ≈ 0.56,
# 提现到账好慢 / 为什么我的钱少了 ≈ 0.1.
DEFAULT_THRESHOLD = 0.35
_DIGITS_RE = re.compile(r"\d{4,}")


def group_texts(texts: Sequence[str], *, threshold: float = DEFAULT_THRESHOLD) -> List[int]:
    """A group number (1, 2, …) per text, in the order given; the first text is group 1.

    Give the texts most important first: each group's leader is its first text.
    """
    if not texts:
        return []
    from sklearn.feature_extraction.text import TfidfVectorizer

    from walletbot.trainer.sources import example_key

    shapes = [_DIGITS_RE.sub("0", example_key(t)) or t for t in texts]
    vectors = TfidfVectorizer(
        analyzer="char", ngram_range=(1, 2), sublinear_tf=True
    ).fit_transform(shapes)
    leaders: List[int] = []
    groups: List[int] = []
    for i in range(len(texts)):
        best = 0
        if leaders:
            sims = (vectors[leaders] @ vectors[i].T).toarray().ravel()
            for n, sim in enumerate(sims):
                if sim >= threshold - 1e-9:
                    best = n + 1
                    break
        if best == 0:
            leaders.append(i)
            best = len(leaders)
        groups.append(best)
    return groups
