#!/usr/bin/env bash
# MPI tests of 'septa train' on loopback: usage mpi_train_test.sh SEPTA MPIEXEC CASE
#   lbfgs     1, 2 and 4 ranks give the model bytes of one process (no mpirun), also with
#             observation-conditioned B templates
#   separate  -a separate and -a memm: 1, 2 and 4 ranks give the model bytes of one process
#             (and 3 ranks with --min-freq 2 --all-possible-states; 4 ranks on 2 sentences);
#             piecewise over 2 ranks is refused with a clear message and leaves no model
#   kill      a rank killed mid-run: non-zero exit, no model file, no temporary file
#   communicator  (SEPTA is then the communicator test program) its collectives on 1-4 ranks
set -euo pipefail
septa="$1"; mpiexec="$2"; case_name="$3"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d /tmp/septa_mpi_XXXXXX)"
trap 'rm -rf "$work"' EXIT
flags=(--oversubscribe --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)
[ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
fail() { echo "FAIL: $*" >&2; exit 1; }

case "$case_name" in
  lbfgs)
    python3 "$here/make_corpus.py" "$work/train.txt" 600 1
    "$septa" train -q -a lbfgs --max-iterations 15 -m "$work/one.model" "$work/train.txt"
    for n in 1 2 4; do
      "$mpiexec" "${flags[@]}" -n "$n" "$septa" train -q -a lbfgs --max-iterations 15 \
        -m "$work/ranks$n.model" "$work/train.txt"
      cmp "$work/one.model" "$work/ranks$n.model" || fail "lbfgs: $n ranks differ from one process"
      echo "lbfgs: $n ranks == one process"
    done
    # Observation-conditioned B templates: their edge features are exchanged like the others.
    printf 'U00:%%x[0,0]\nU01:%%x[0,1]\nB\nB01:%%x[0,1]\nB02:%%x[-1,0]\n' > "$work/cond.template"
    "$septa" train -q -a lbfgs --max-iterations 15 -t "$work/cond.template" \
      -m "$work/one_cond.model" "$work/train.txt"
    for n in 2 4; do
      "$mpiexec" "${flags[@]}" -n "$n" "$septa" train -q -a lbfgs --max-iterations 15 \
        -t "$work/cond.template" -m "$work/cond$n.model" "$work/train.txt"
      cmp "$work/one_cond.model" "$work/cond$n.model" ||
        fail "lbfgs with B01:%x templates: $n ranks differ from one process"
      echo "lbfgs with conditioned transitions: $n ranks == one process"
    done
    ;;
  separate)
    python3 "$here/make_corpus.py" "$work/train.txt" 600 2
    for algorithm in separate memm; do
      "$septa" train -q -a "$algorithm" --shards 5 -m "$work/one.model" "$work/train.txt"
      for n in 1 2 4; do
        "$mpiexec" "${flags[@]}" -n "$n" "$septa" train -q -a "$algorithm" --shards 5 \
          -m "$work/ranks$n.model" "$work/train.txt"
        cmp "$work/one.model" "$work/ranks$n.model" || fail "$algorithm: $n ranks differ from one process"
        echo "$algorithm: $n ranks == one process"
      done
    done
    # Shards aligned with the ranks' parts of the file (--shard-parts): the same model for any
    # rank and thread count, and with the default 16 shards.
    "$septa" train -q -a separate --shard-parts 16 -m "$work/one_parts.model" "$work/train.txt"
    for n in 2 3 4; do
      "$mpiexec" "${flags[@]}" -n "$n" "$septa" train -q -a separate --shard-parts 16 \
        -m "$work/parts$n.model" "$work/train.txt"
      cmp "$work/one_parts.model" "$work/parts$n.model" ||
        fail "separate --shard-parts 16: $n ranks differ from one process"
      echo "separate --shard-parts 16: $n ranks == one process"
    done
    "$mpiexec" "${flags[@]}" -n 2 "$septa" train -q -a separate --shard-parts 2 --threads 2 \
      -m "$work/parts2x2.model" "$work/train.txt"
    "$septa" train -q -a separate --shard-parts 2 -m "$work/one_parts2.model" "$work/train.txt"
    cmp "$work/one_parts2.model" "$work/parts2x2.model" ||
      fail "separate --shard-parts 2: 2 ranks x 2 threads differ from one process"
    echo "separate --shard-parts 2: 2 ranks x 2 threads == one process"
    # Feature counting is divided over the ranks and merged: the --min-freq and
    # --all-possible-states rules must give the features of one process.
    "$septa" train -q -a separate --min-freq 2 --all-possible-states -m "$work/one_rules.model" \
      "$work/train.txt"
    "$mpiexec" "${flags[@]}" -n 3 "$septa" train -q -a separate --min-freq 2 \
      --all-possible-states -m "$work/rules3.model" "$work/train.txt"
    cmp "$work/one_rules.model" "$work/rules3.model" ||
      fail "separate --min-freq 2 --all-possible-states: 3 ranks differ from one process"
    echo "separate with feature rules: 3 ranks == one process"
    # Two sentences over 4 ranks: some ranks read nothing and hold instances of the others.
    python3 "$here/make_corpus.py" "$work/tiny.txt" 2 4
    "$septa" train -q -a separate --shards 5 -m "$work/one_tiny.model" "$work/tiny.txt"
    "$mpiexec" "${flags[@]}" -n 4 "$septa" train -q -a separate --shards 5 \
      -m "$work/tiny4.model" "$work/tiny.txt"
    cmp "$work/one_tiny.model" "$work/tiny4.model" ||
      fail "separate on 2 sentences: 4 ranks differ from one process"
    echo "separate with ranks that read nothing: 4 ranks == one process"
    if "$mpiexec" "${flags[@]}" -n 2 "$septa" train -q -a piecewise -m "$work/piecewise.model" \
        "$work/train.txt" 2> "$work/err.txt"; then
      fail "piecewise over 2 ranks should be refused"
    fi
    grep -q "over several MPI ranks only lbfgs" "$work/err.txt" || fail "unclear message: $(cat "$work/err.txt")"
    [ ! -e "$work/piecewise.model" ] || fail "a model file was left behind"
    ;;
  kill)
    python3 "$here/make_corpus.py" "$work/train.txt" 3000 3
    "$mpiexec" "${flags[@]}" -n 2 "$septa" train -a lbfgs --max-iterations 100000 --epsilon 0 \
      --delta 0 -m "$work/killed.model" "$work/train.txt" > "$work/log.txt" 2>&1 &
    launcher=$!
    for _ in $(seq 600); do
      grep -q "iter    3" "$work/log.txt" && break
      sleep 0.1
    done
    grep -q "iter    3" "$work/log.txt" || { kill "$launcher"; fail "training did not start: $(cat "$work/log.txt")"; }
    # Kill the last rank the launcher started (its own child, by process id).
    victim="$(pgrep -P "$launcher" -f septa | tail -n 1)"
    [ -n "$victim" ] || { kill "$launcher"; fail "no rank process found"; }
    kill -9 "$victim"
    status=0
    wait "$launcher" || status=$?
    [ "$status" -ne 0 ] || fail "the job exited 0 after a rank was killed"
    [ ! -e "$work/killed.model" ] || fail "a model file was left behind"
    ! ls "$work"/killed.model.* > /dev/null 2>&1 || fail "a temporary model file was left behind"
    echo "kill: exit $status, no model file"; tail -n 5 "$work/log.txt"
    ;;
  communicator)
    for n in 1 2 3 4; do
      "$mpiexec" "${flags[@]}" -n "$n" "$septa" || fail "communicator: $n ranks"
    done
    ;;
  *) fail "unknown case $case_name" ;;
esac
