"""Evaluation of label sequences.

Chunk (entity) metrics are computed by septa's C++ implementation of the CoNLL script
``conlleval`` -- the same code as ``septa eval`` -- so the figures are conlleval's to the
last digit. ``y_true`` and ``y_pred`` are lists of label sequences in IOB1/IOB2 (or IOBES with
``scheme='iobes'``). Chunk figures from :func:`conlleval` are percentages, as conlleval prints
them; the ``chunk_*_score`` functions return fractions in [0, 1], as sklearn does.

Token-level ("flat") metrics have the names and meaning of ``sklearn_crfsuite.metrics``: the
label sequences are flattened and every token counts once, and labels may be any hashable
values (str, int...). With scikit-learn installed, ``flat_precision_score``,
``flat_recall_score``, ``flat_f1_score``, ``flat_fbeta_score`` and
``flat_classification_report`` are sklearn's functions on the flattened labels, taking every
keyword they take (``sample_weight``, ``zero_division``...), as in sklearn-crfsuite; without it
septa's own implementation answers ``labels``, ``pos_label``, ``average`` (and ``digits``,
``output_dict`` for the report) with the same figures.
"""

from collections import Counter, OrderedDict

from . import _septa

__all__ = [
    "conlleval", "conlleval_report", "chunk_precision_score", "chunk_recall_score",
    "chunk_f1_score", "chunk_classification_report", "flat_accuracy_score",
    "flat_precision_score", "flat_recall_score", "flat_f1_score", "flat_fbeta_score",
    "flat_classification_report", "sequence_accuracy_score",
]


def _sequences(y, name, strings):
    if isinstance(y, (str, bytes)):
        raise ValueError("%s must be a list of label sequences" % name)
    out = []
    for i, sequence in enumerate(y):
        if isinstance(sequence, (str, bytes)):
            raise ValueError("%s[%d] must be a sequence of labels, not a string" % (name, i))
        sequence = list(sequence)
        if strings:
            for t, label in enumerate(sequence):
                if not isinstance(label, str):
                    raise ValueError("%s[%d][%d]: labels must be str, got %r"
                                     % (name, i, t, label))
        out.append(sequence)
    return out


def _pair(y_true, y_pred, strings=True):
    """The label sequences as lists, checked to align; chunk metrics need str labels."""
    y_true = _sequences(y_true, "y_true", strings)
    y_pred = _sequences(y_pred, "y_pred", strings)
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length: %d sequences vs %d"
                         % (len(y_true), len(y_pred)))
    for i, (a, b) in enumerate(zip(y_true, y_pred)):
        if len(a) != len(b):
            raise ValueError("sequence %d: y_true has %d labels but y_pred has %d"
                             % (i, len(a), len(b)))
    return y_true, y_pred


# ---- chunk metrics (conlleval) ------------------------------------------------------------

def conlleval(y_true, y_pred, scheme="iob"):
    """Return conlleval's figures as a dict.

    Keys: ``tokens``, ``correct_tokens``, ``accuracy`` (percent), ``overall`` and
    ``by_type`` (chunk type -> counts), where counts are dicts with ``gold``, ``guessed``,
    ``correct``, ``precision``, ``recall``, ``f1`` (percent, unrounded).
    """
    y_true, y_pred = _pair(y_true, y_pred)
    return _septa.evaluate(y_true, y_pred, scheme)


def conlleval_report(y_true, y_pred, scheme="iob"):
    """Return conlleval's text report, byte for byte what ``septa eval`` prints."""
    y_true, y_pred = _pair(y_true, y_pred)
    return _septa.conlleval_report(y_true, y_pred, scheme)


chunk_classification_report = conlleval_report


def _chunk_figure(y_true, y_pred, figure, chunk_type, scheme):
    result = conlleval(y_true, y_pred, scheme)
    if chunk_type is None:
        counts = result["overall"]
    elif chunk_type in result["by_type"]:
        counts = result["by_type"][chunk_type]
    else:
        return 0.0
    return counts[figure] / 100.0


def chunk_precision_score(y_true, y_pred, chunk_type=None, scheme="iob"):
    """Chunk precision in [0, 1], overall or of one ``chunk_type`` (e.g. ``'NP'``)."""
    return _chunk_figure(y_true, y_pred, "precision", chunk_type, scheme)


def chunk_recall_score(y_true, y_pred, chunk_type=None, scheme="iob"):
    """Chunk recall in [0, 1], overall or of one ``chunk_type``."""
    return _chunk_figure(y_true, y_pred, "recall", chunk_type, scheme)


def chunk_f1_score(y_true, y_pred, chunk_type=None, scheme="iob"):
    """Chunk F1 in [0, 1] (conlleval's FB1), overall or of one ``chunk_type``."""
    return _chunk_figure(y_true, y_pred, "f1", chunk_type, scheme)


# ---- flat (token-level) metrics, as sklearn_crfsuite.metrics --------------------------------

def _flatten(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred, strings=False)
    return ([label for sequence in y_true for label in sequence],
            [label for sequence in y_pred for label in sequence])


def flat_accuracy_score(y_true, y_pred):
    """Fraction of tokens whose predicted label is the true one."""
    true, pred = _flatten(y_true, y_pred)
    if not true:
        return 0.0
    return sum(a == b for a, b in zip(true, pred)) / len(true)


def sequence_accuracy_score(y_true, y_pred):
    """Fraction of sequences predicted entirely right."""
    y_true, y_pred = _pair(y_true, y_pred, strings=False)
    if not y_true:
        return 0.0
    return sum(a == b for a, b in zip(y_true, y_pred)) / len(y_true)


def _per_label(true, pred, labels):
    tp, true_count, pred_count = Counter(), Counter(true), Counter(pred)
    for a, b in zip(true, pred):
        if a == b:
            tp[a] += 1
    return [(label, tp[label], pred_count[label], true_count[label]) for label in labels]


def _fscore(precision, recall, beta):
    b2 = beta * beta
    denominator = b2 * precision + recall
    return (1 + b2) * precision * recall / denominator if denominator > 0 else 0.0


def _divide(a, b):
    return a / b if b else 0.0


def precision_recall_fscore_support(y_true, y_pred, beta=1.0, labels=None, pos_label=1,
                                    average=None):
    """Token-level precision, recall, F-beta and support, like sklearn's function.

    ``average``: None (per label lists), 'micro', 'macro', 'weighted' or 'binary' (only for
    two labels; ``pos_label`` is the positive one). Undefined ratios are 0.
    """
    true, pred = _flatten(y_true, y_pred)
    present = sorted(set(true) | set(pred))
    if average == "binary":
        if len(present) > 2:
            raise ValueError("target is multiclass but average='binary'; choose average="
                             "'micro', 'macro', 'weighted' or None")
        if pos_label not in present and present:
            raise ValueError("pos_label=%r is not a label (labels: %s)" % (pos_label, present))
        labels = [pos_label]
    elif average not in (None, "micro", "macro", "weighted"):
        raise ValueError("average must be None, 'binary', 'micro', 'macro' or 'weighted', got %r"
                         % (average,))
    if labels is None:
        labels = present
    rows = _per_label(true, pred, list(labels))
    if average == "micro":
        tp = sum(r[1] for r in rows)
        p = _divide(tp, sum(r[2] for r in rows))
        r = _divide(tp, sum(r[3] for r in rows))
        return p, r, _fscore(p, r, beta), None
    precisions = [_divide(tp, guessed) for _, tp, guessed, _ in rows]
    recalls = [_divide(tp, gold) for _, tp, _, gold in rows]
    fscores = [_fscore(p, r, beta) for p, r in zip(precisions, recalls)]
    supports = [gold for _, _, _, gold in rows]
    if average is None:
        return precisions, recalls, fscores, supports
    if average == "binary":
        return precisions[0], recalls[0], fscores[0], None
    if average == "macro":
        weights = [1.0] * len(rows)
    else:  # weighted
        weights = [float(s) for s in supports]
    total = sum(weights)

    def mean(values):
        return _divide(sum(w * v for w, v in zip(weights, values)), total)

    return mean(precisions), mean(recalls), mean(fscores), None


def _sklearn_metrics():
    try:
        from sklearn import metrics
    except ImportError:
        return None
    return metrics


def _own(function, kwargs, allowed):
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError("%s(): %s need scikit-learn (not installed); septa's own implementation "
                        "takes %s" % (function, ", ".join(unknown), ", ".join(allowed)))


_OWN_KEYWORDS = ("labels", "pos_label", "average")


def _own_score(y_true, y_pred, beta, index, function, kwargs):
    _own(function, kwargs, _OWN_KEYWORDS)
    return precision_recall_fscore_support(
        y_true, y_pred, beta, kwargs.get("labels"), kwargs.get("pos_label", 1),
        kwargs.get("average", "binary"))[index]


def flat_precision_score(y_true, y_pred, **kwargs):
    """Token-level precision: sklearn's ``precision_score`` over the flattened labels."""
    metrics = _sklearn_metrics()
    if metrics is not None:
        return metrics.precision_score(*_flatten(y_true, y_pred), **kwargs)
    return _own_score(y_true, y_pred, 1.0, 0, "flat_precision_score", kwargs)


def flat_recall_score(y_true, y_pred, **kwargs):
    """Token-level recall: sklearn's ``recall_score`` over the flattened labels."""
    metrics = _sklearn_metrics()
    if metrics is not None:
        return metrics.recall_score(*_flatten(y_true, y_pred), **kwargs)
    return _own_score(y_true, y_pred, 1.0, 1, "flat_recall_score", kwargs)


def flat_fbeta_score(y_true, y_pred, beta, **kwargs):
    """Token-level F-beta: sklearn's ``fbeta_score`` over the flattened labels."""
    metrics = _sklearn_metrics()
    if metrics is not None:
        return metrics.fbeta_score(*_flatten(y_true, y_pred), beta=beta, **kwargs)
    return _own_score(y_true, y_pred, beta, 2, "flat_fbeta_score", kwargs)


def flat_f1_score(y_true, y_pred, **kwargs):
    """Token-level F1: sklearn's ``f1_score`` over the flattened labels."""
    metrics = _sklearn_metrics()
    if metrics is not None:
        return metrics.f1_score(*_flatten(y_true, y_pred), **kwargs)
    return _own_score(y_true, y_pred, 1.0, 2, "flat_f1_score", kwargs)


def flat_classification_report(y_true, y_pred, labels=None, **kwargs):
    """Per-label token precision/recall/F1/support and averages: sklearn's
    ``classification_report`` over the flattened labels (``digits``, ``output_dict``,
    ``target_names``, ``zero_division``...)."""
    metrics = _sklearn_metrics()
    if metrics is not None:
        return metrics.classification_report(*_flatten(y_true, y_pred), labels=labels, **kwargs)
    _own("flat_classification_report", kwargs, ("labels", "digits", "output_dict"))
    return _own_report(y_true, y_pred, labels, kwargs.get("digits", 2),
                       kwargs.get("output_dict", False))


def _own_report(y_true, y_pred, labels, digits, output_dict):
    true, _ = _flatten(y_true, y_pred)
    if labels is None:
        labels = sorted(set(true) | set(label for s in y_pred for label in s))
    labels = list(labels)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels)
    report = OrderedDict()
    for i, label in enumerate(labels):
        report[label] = {"precision": p[i], "recall": r[i], "f1-score": f[i], "support": s[i]}
    support = sum(s)
    for name, average in (("micro avg", "micro"), ("macro avg", "macro"),
                          ("weighted avg", "weighted")):
        ap, ar, af, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                        average=average)
        report[name] = {"precision": ap, "recall": ar, "f1-score": af, "support": support}
    if output_dict:
        return dict(report)
    width = max([len(name) for name in report] + [len("weighted avg")])
    header = "%*s %9s %9s %9s %9s" % (width, "", "precision", "recall", "f1-score", "support")
    lines = [header, ""]
    for name, row in report.items():
        if name == "micro avg":
            lines.append("")
        lines.append("%*s %9.*f %9.*f %9.*f %9d" % (
            width, name, digits, row["precision"], digits, row["recall"], digits,
            row["f1-score"], row["support"]))
    return "\n".join(lines) + "\n"
