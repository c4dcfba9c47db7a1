#!/usr/bin/env python3
"""Cost model of data-parallel -a lbfgs over MPI (docs/mpi.md): time per gradient evaluation
and speed-up for N hosts, from constants fitted to measurements on the project machine.

usage: bench/mpi_cost_model.py [--tokens 1e8] [--gbit 10]
"""
import argparse
import math

# Fitted on CoNLL-2000 (docs/mpi.md, "Measurements"); T = tokens of the training corpus.
C_TOKEN = 1.05e-6       # CPU s of forward-backward + expectations per token per evaluation
C_ADD = 4e-9            # s per gradient entry folded (unpack + add)
C_OPT = 17e-9           # s per feature per evaluation of the L-BFGS update (m = 6): on every
                        # rank with liblbfgs (before 27 Nov), on its range with minimize_ranged
CHUNK = 1024            # features per chunk of the dot products (FeatureRanges::kChunk)
DOTS = 16               # dot-product rounds per evaluation (2 m + 3 for m = 6, one per trial)
F_COEF, F_EXP = None, None   # features F(T) = F_COEF * T ** F_EXP  (filled below)
U_COEF, U_EXP = None, None   # touched entries of a block of t tokens: U_COEF * t ** U_EXP
LATENCY = 50e-6         # s per message step on the network (TCP, one switch)


def fit(points):
    """Least-squares power law y = a x^b through (x, y) points."""
    import math
    xs = [math.log(x) for x, _ in points]
    ys = [math.log(y) for _, y in points]
    n = len(points)
    mx, my = sum(xs) / n, sum(ys) / n
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return math.exp(my - b * mx), b


# Measured: (tokens, features) of CoNLL-2000 prefixes, and (block tokens, touched entries per
# block) from the bytes each rank received per evaluation with 16 blocks.
FEATURES = [(53159, 174355), (106077, 285581), (211727, 456807)]
TOUCHED = [(53159 / 16, 4.94e6 / 128 - 1), (106077 / 16, 8.39e6 / 128 - 1),
           (211727 / 16, 13.99e6 / 128 - 1)]


def evaluation_seconds(tokens, hosts, gbit, scheme):
    blocks = max(16, hosts)  # the reduction blocks: at least one per rank
    F = F_COEF * tokens ** F_EXP
    touched = min(F, U_COEF * (tokens / blocks) ** U_EXP)
    compute = C_TOKEN * tokens / hosts
    bandwidth = gbit * 1e9 / 8
    if hosts == 1:
        comm, entries = 0.0, blocks * touched
    elif scheme == "allgather":   # before 27 Nov: every rank receives and folds every block
        received = 8 * blocks * touched * (hosts - 1) / hosts
        comm, entries = (hosts - 1) * LATENCY + received / bandwidth, blocks * touched
    else:   # block-order reduce-scatter (alltoall of ranges) + allgather of ranges (of the
            # gradient with liblbfgs, of the weights with minimize_ranged)
        received = 8 * (blocks * touched / hosts + F) * (hosts - 1) / hosts
        comm, entries = 2 * (hosts - 1) * LATENCY + received / bandwidth, blocks * touched / hosts
    optimiser = C_OPT * F
    if scheme == "ranged" and hosts > 1:  # implemented: the update divided, dots allgathered
        steps = math.ceil(math.log2(hosts))  # recursive doubling for small allgathers
        comm += DOTS * (steps * LATENCY + 8 * (F / CHUNK) * (hosts - 1) / hosts / bandwidth)
        optimiser /= hosts
    serial = C_ADD * entries + optimiser
    return compute + comm + serial, compute, comm, serial, F


def main():
    global F_COEF, F_EXP, U_COEF, U_EXP
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=float, default=1e8)
    parser.add_argument("--gbit", type=float, default=10.0)
    args = parser.parse_args()
    F_COEF, F_EXP = fit(FEATURES)
    U_COEF, U_EXP = fit(TOUCHED)
    print(f"fits: F(T) = {F_COEF:.3g} T^{F_EXP:.3f}; touched(t) = {U_COEF:.3g} t^{U_EXP:.3f}")
    # ranged: implemented (27 Nov, minimize_ranged); reduce-scatter: the same with liblbfgs's
    # replicated update; allgather: the first implementation.
    for scheme in ("ranged", "reduce-scatter", "allgather"):
        base = evaluation_seconds(args.tokens, 1, args.gbit, scheme)[0]
        print(f"\nscheme {scheme}, {args.tokens:.3g} tokens, {args.gbit:g} Gbit/s")
        print("| hosts | s/evaluation | compute | communication | serial | speed-up |")
        print("|---|---|---|---|---|---|")
        for hosts in (1, 8, 64, 512):
            total, compute, comm, serial, F = evaluation_seconds(args.tokens, hosts, args.gbit, scheme)
            print(f"| {hosts} | {total:.3f} | {compute:.3f} | {comm:.3f} | {serial:.3f} | {base / total:.1f} |")
    print(f"\nfeatures at {args.tokens:.3g} tokens: {F:.3g}")


if __name__ == "__main__":
    main()
