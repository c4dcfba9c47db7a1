"""Writes a deterministic toy chunking corpus ("word POS chunk" columns) for the MPI tests."""
import random
import sys

path, sentences, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
nouns = ["dog", "cat", "market", "price", "share", "bank", "stock", "rate", "year", "firm"]
verbs = ["rose", "fell", "said", "bought", "sold", "made", "took", "saw"]
dets = ["the", "a", "this", "some"]
adjs = ["big", "new", "old", "low", "high"]
with open(path, "w") as out:
    for _ in range(sentences):
        tokens = []
        for _ in range(rng.randint(1, 4)):
            tokens.append((rng.choice(dets), "DT", "B-NP"))
            if rng.random() < 0.5:
                tokens.append((rng.choice(adjs), "JJ", "I-NP"))
            tokens.append((rng.choice(nouns) + str(rng.randint(0, 30)), "NN", "I-NP"))
            tokens.append((rng.choice(verbs), "VBD", "B-VP"))
        tokens.append((".", ".", "O"))
        for word, pos, chunk in tokens:
            out.write(f"{word} {pos} {chunk}\n")
        out.write("\n")
