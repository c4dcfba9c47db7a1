"""Shared fixtures: a toy chunking grammar, feature extraction, file writers, the CLI."""

import os
import random
import subprocess

import pytest

import septa

ALGORITHMS = ["lbfgs", "separate", "separate-counts", "piecewise", "memm", "ap", "pa", "arow",
              "l2sgd"]

# A tiny grammar: sentences are sequences of NP, VP and PP chunks over a small vocabulary, so
# a CRF learns the chunking well from a few hundred sentences.
_LEXICON = {
    "DT": ["the", "a", "every", "some"],
    "JJ": ["big", "small", "red", "old", "quick"],
    "NN": ["dog", "cat", "house", "man", "idea", "car"],
    "NNS": ["dogs", "cats", "houses", "ideas"],
    "VB": ["runs", "sees", "eats", "likes", "builds"],
    "RB": ["quickly", "often"],
    "IN": ["in", "on", "with", "near"],
    "PRP": ["he", "she", "it"],
}


def _np(rng):
    if rng.random() < 0.2:
        return [("PRP", "NP")]
    tags = ["DT"] if rng.random() < 0.7 else []
    tags += ["JJ"] * rng.randint(0, 2)
    tags.append(rng.choice(["NN", "NNS"]))
    return [(t, "NP") for t in tags]


def _vp(rng):
    tags = (["RB"] if rng.random() < 0.3 else []) + ["VB"]
    return [(t, "VP") for t in tags]


def _pp(rng):
    return [("IN", "PP")]


def generate(n, seed=0):
    """Return (sentences, labels): sentences of [word, POS] tokens, IOB2 chunk labels."""
    rng = random.Random(seed)
    sentences, labels = [], []
    for _ in range(n):
        chunks = [_np(rng), _vp(rng), _np(rng)]
        if rng.random() < 0.5:
            chunks += [_pp(rng), _np(rng)]
        tokens, tags = [], []
        for chunk in chunks:
            for i, (pos, kind) in enumerate(chunk):
                tokens.append([rng.choice(_LEXICON[pos]), pos])
                tags.append(("B-" if i == 0 else "I-") + kind)
        if rng.random() < 0.3:
            tokens.append([".", "."])
            tags.append("O")
        sentences.append(tokens)
        labels.append(tags)
    return sentences, labels


def token_features(sentence, t):
    """sklearn-crfsuite style features of token t: str, bool, float and nested values."""
    word, pos = sentence[t]
    features = {
        "bias": 1.0,
        "w": word,
        "pos": pos,
        "suffix2": word[-2:],
        "is_title": word.istitle(),
        "len": len(word) / 10.0,
    }
    if t > 0:
        features["prev"] = {"w": sentence[t - 1][0], "pos": sentence[t - 1][1]}
    else:
        features["BOS"] = True
    if t + 1 < len(sentence):
        features["next"] = {"pos": sentence[t + 1][1]}
    else:
        features["EOS"] = True
    return features


def features(sentences):
    return [[token_features(s, t) for t in range(len(s))] for s in sentences]


def _escape(name):
    return name.replace("\\", "\\\\").replace(":", "\\:")


def write_attributes(path, X, y):
    """Write feature dicts in CRFsuite's attribute format, converted as septa.CRF does."""
    with open(path, "w") as out:
        for xs, ys in zip(X, y):
            for item, label in zip(xs, ys):
                fields = [label]
                for name, value in septa.item_attributes(item):
                    fields.append("%s:%r" % (_escape(name), value))
                out.write("\t".join(fields) + "\n")
            out.write("\n")


def write_columns(path, sentences, labels=None):
    with open(path, "w") as out:
        for i, sentence in enumerate(sentences):
            for t, token in enumerate(sentence):
                out.write(" ".join(token + ([labels[i][t]] if labels else [])) + "\n")
            out.write("\n")


def read_tagged(text):
    """The last column of `septa tag` output, as label sequences."""
    sequences, current = [], []
    for line in text.splitlines():
        if not line.strip():
            if current:
                sequences.append(current)
            current = []
        else:
            current.append(line.split()[-1])
    if current:
        sequences.append(current)
    return sequences


def fit_or_skip(crf, X, y, **kwargs):
    """crf.fit, skipping the test when the algorithm is not in this build yet."""
    try:
        return crf.fit(X, y, **kwargs)
    except ValueError as e:
        if "not available yet" in str(e):
            pytest.skip("algorithm %s is not available yet: %s" % (crf.algorithm, e))
        raise


@pytest.fixture(scope="session")
def data():
    """(X, y, sentences) for training and (X, y, sentences) for testing."""
    train_sentences, train_labels = generate(300, seed=1)
    test_sentences, test_labels = generate(100, seed=2)
    return {
        "train": (features(train_sentences), train_labels, train_sentences),
        "test": (features(test_sentences), test_labels, test_sentences),
    }


@pytest.fixture(scope="session")
def cli():
    """The septa command-line tool, from $SEPTA_CLI."""
    path = os.environ.get("SEPTA_CLI")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("SEPTA_CLI is not set to the septa executable (build it with CMake, target "
                    "septa, and export SEPTA_CLI=/path/to/build/septa)")

    def run(*args, check=True):
        result = subprocess.run([path] + [str(a) for a in args], capture_output=True, text=True,
                                timeout=120)
        if check and result.returncode != 0:
            raise AssertionError("septa %s failed (%d): %s"
                                 % (" ".join(map(str, args)), result.returncode, result.stderr))
        return result

    return run
