"""Words of a title or query, and their hashed features: unigrams, bigrams and character n-grams.

Hashing (MurmurHash3 by mmh3: the same ids as scikit-learn's `murmurhash3_32`, without scikit-learn in the base
install) keeps the encoder a fixed size whatever the shop's vocabulary; the
vocabulary itself is kept only to say which query words the model has seen. Plurals and singulars meet
("tshirts" is the titles' "T-shirt"), so queries in the shop's category names find titles in its product words.
"""

from __future__ import annotations

import re
from itertools import pairwise
import unicodedata
from dataclasses import asdict, dataclass

import mmh3
import numpy as np

_JOINED = re.compile(r"(?<=\w)['’-](?=\w)")  # "t-shirt" -> "tshirt", "men's" -> "mens"
_WORD = re.compile(r"[^\W_]+")


def words_of(text: str) -> list[str]:
    """Lower-case words, hyphenated and apostrophe'd ones joined."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    return _WORD.findall(_JOINED.sub("", text))


def canonical(word: str, vocabulary: dict[str, int] | set[str]) -> str | None:
    """The vocabulary's own form of `word` (itself, its singular or its plural), or None when it has none."""
    if word in vocabulary:
        return word
    forms = [word + "s", word + "es"]
    if word.endswith("ies"):
        forms.insert(0, word[:-3] + "y")
    if word.endswith("es"):
        forms.insert(0, word[:-2])
    if word.endswith("s"):
        forms.insert(0, word[:-1])
    return next((f for f in forms if f and f in vocabulary), None)


@dataclass(frozen=True)
class HashingConfig:
    """How words become feature ids; saved in the model's manifest, so a query is hashed as training was."""

    buckets: int = 2**18
    char_min: int = 3  # character n-grams of "<word>", from this length ...
    char_max: int = 5  # ... to this one
    bigrams: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> HashingConfig:
        return cls(**{k: data[k] for k in ("buckets", "char_min", "char_max", "bigrams")})

    def bucket(self, feature: str) -> int:
        return mmh3.hash(feature, signed=False) % self.buckets

    def word_features(self, word: str) -> dict[int, float]:
        """A word's own features: 1 as a unigram, and 1 spread over its character n-grams."""
        weights = {self.bucket("w:" + word): 1.0}
        marked = f"<{word}>"
        grams = [marked[i:i + n] for n in range(self.char_min, self.char_max + 1) for i in range(len(marked) - n + 1)]
        for gram in grams:
            bucket = self.bucket("c:" + gram)
            weights[bucket] = weights.get(bucket, 0.0) + 1.0 / len(grams)
        return weights

    def bigram_bucket(self, first: str, second: str) -> int:
        return self.bucket(f"b:{first} {second}")

    def features(self, words: list[str]) -> dict[int, float]:
        """{bucket: weight}: each word's own features, and 1 for each pair of neighbouring words."""
        weights: dict[int, float] = {}
        for word in words:
            for bucket, weight in self.word_features(word).items():
                weights[bucket] = weights.get(bucket, 0.0) + weight
        if self.bigrams:
            for first, second in pairwise(words):
                bucket = self.bigram_bucket(first, second)
                weights[bucket] = weights.get(bucket, 0.0) + 1.0
        return weights

    def weighted_rows(self, words: list[str], rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The sum of `weights`' rows for the features of `words`, each row times its feature's weight (float32).
        `rows` [n] are the buckets the weights' rows stand for, sorted; features in no row count nothing. The
        rows are added one at a time in bucket order, in float32: the sums of the sparse feature matrix's
        product, to the bit."""
        total = np.zeros(weights.shape[1], np.float32)
        for bucket, weight in sorted(self.features(words).items()):
            j = int(np.searchsorted(rows, bucket))
            if j < len(rows) and rows[j] == bucket:
                total += np.float32(weight) * weights[j]
        return total
