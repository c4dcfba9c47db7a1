#!/usr/bin/env bash
# Runs sklearn-crfsuite's own test suite against septa with only the import changed (issue 16).
# The suite is not part of septa: pass the tests/ folder of a sklearn-crfsuite checkout. It runs
# on a copy, beside a one-line shim package `sklearn_crfsuite` that re-exports septa; in that
# copy `sklearn.cross_validation` (gone from scikit-learn) is read as `sklearn.model_selection`.
# Needs the Python package installed in build/venv (scripts/python_test.sh does that).
# usage: scripts/sklearn_crfsuite_suite.sh SKLEARN_CRFSUITE/tests [pytest options]
set -euo pipefail
if [ $# -lt 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 SKLEARN_CRFSUITE_TESTS_DIR [pytest options]" >&2
  exit 2
fi
tests=$(cd "$1" && pwd)
shift
root=$(cd "$(dirname "$0")/.." && pwd)
python="$root/build/venv/bin/python"
if ! "$python" -c "import septa" 2>/dev/null; then
  echo "error: septa is not installed in build/venv; run scripts/python_test.sh first" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/sklearn_crfsuite" "$work/tests"
cat > "$work/sklearn_crfsuite/__init__.py" <<'EOF'
from septa import CRF, metrics, scorers, utils  # the one-line change: sklearn_crfsuite -> septa
EOF
for module in metrics scorers utils; do
  echo "from septa.$module import *" > "$work/sklearn_crfsuite/$module.py"
done
cp "$tests"/*.py "$work/tests/"
sed -i 's/sklearn\.cross_validation/sklearn.model_selection/' "$work/tests/"*.py
cd "$work"
PYTHONPATH="$work" "$python" -m pytest -p no:cacheprovider -q tests "$@"
