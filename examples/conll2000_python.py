#!/usr/bin/env python3
"""CoNLL-2000 chunking in Python: separate (CR-F) and standard CRF training side by side.

The code is what an sklearn-crfsuite user writes, with ``septa`` in place of
``sklearn_crfsuite``: feature dicts per token, ``CRF.fit``, ``CRF.predict`` and
conlleval's chunk F1 from ``septa.metrics``.

Data: train.txt and test.txt (word POS chunk per line) under $SEPTA_DATA/conll2000, where
SEPTA_DATA defaults to ../shared/data relative to the repository root.

    build/venv/bin/python examples/conll2000_python.py [--max-iterations N] [--threads N]
        [--limit SENTENCES] [--template]
"""

import argparse
import os
import sys
import time

import septa

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_conll(path, limit=None):
    """Sentences of [word, POS] tokens and their chunk labels."""
    sentences, labels, tokens, tags = [], [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if not fields:
                if tokens:
                    sentences.append(tokens)
                    labels.append(tags)
                    tokens, tags = [], []
                    if limit and len(sentences) >= limit:
                        break
                continue
            tokens.append(fields[:-1])
            tags.append(fields[-1])
    if tokens and not (limit and len(sentences) >= limit):
        sentences.append(tokens)
        labels.append(tags)
    return sentences, labels


def token_features(sentence, t):
    """Word and POS in a window of two, as sklearn-crfsuite's tutorial builds them."""
    word, pos = sentence[t][0], sentence[t][1]
    features = {
        "bias": 1.0,
        "word.lower": word.lower(),
        "word[-3:]": word[-3:],
        "word.isupper": word.isupper(),
        "word.istitle": word.istitle(),
        "word.isdigit": word.isdigit(),
        "pos": pos,
        "pos[:2]": pos[:2],
    }
    for offset in (-2, -1, 1, 2):
        i = t + offset
        if 0 <= i < len(sentence):
            features["%+d" % offset] = {"word.lower": sentence[i][0].lower(),
                                        "pos": sentence[i][1]}
            if abs(offset) == 1:
                features["%+d" % offset]["pos.bigram"] = (
                    sentence[min(i, t)][1] + "|" + sentence[max(i, t)][1])
        elif offset == -1:
            features["BOS"] = True
        elif offset == 1:
            features["EOS"] = True
    return features


def sentence_features(sentence):
    return [token_features(sentence, t) for t in range(len(sentence))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-iterations", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="training sentences at most")
    parser.add_argument("--template", action="store_true",
                        help="features from examples/chunking.template instead of dicts")
    args = parser.parse_args()

    data = os.path.join(os.environ.get("SEPTA_DATA", os.path.join(REPO, "..", "shared", "data")),
                        "conll2000")
    try:
        train_sentences, y_train = read_conll(os.path.join(data, "train.txt"), args.limit)
        test_sentences, y_test = read_conll(os.path.join(data, "test.txt"))
    except OSError as e:
        sys.exit("cannot read CoNLL-2000 data (%s); set SEPTA_DATA" % e)

    if args.template:
        template = os.path.join(REPO, "examples", "chunking.template")
        X_train, X_test = train_sentences, test_sentences
    else:
        template = None
        X_train = [sentence_features(s) for s in train_sentences]
        X_test = [sentence_features(s) for s in test_sentences]
    print("%d training and %d test sentences" % (len(X_train), len(X_test)))

    results = {}
    for algorithm in ("separate", "lbfgs"):
        crf = septa.CRF(algorithm=algorithm, c2=1.0, max_iterations=args.max_iterations,
                        num_threads=args.threads, template=template)
        start = time.time()
        crf.fit(X_train, y_train)
        seconds = time.time() - start
        y_pred = crf.predict(X_test)
        results[algorithm] = (seconds, septa.metrics.chunk_f1_score(y_test, y_pred),
                              septa.metrics.flat_accuracy_score(y_test, y_pred))
        print("\n== %s: trained in %.1f s (%d iterations, %s)" % (
            algorithm, seconds, crf.training_log_["iterations"], crf.training_log_["stop_reason"]))
        print(septa.metrics.conlleval_report(y_test, y_pred), end="")

    print("\n%-10s %10s %10s %10s" % ("algorithm", "train (s)", "chunk F1", "token acc"))
    for algorithm, (seconds, f1, accuracy) in results.items():
        print("%-10s %10.1f %10.2f %10.2f" % (algorithm, seconds, 100 * f1, 100 * accuracy))


if __name__ == "__main__":
    main()
