"""Trainer classes for ``CRF(trainer_cls=...)``: python-crfsuite's ``Trainer`` hooks over septa.

sklearn-crfsuite builds its trainer as ``trainer_cls(algorithm=..., params=..., verbose=...)``
from a ``pycrfsuite.Trainer`` subclass and keeps ``trainer.logparser`` as ``training_log_``.
septa trains in its own C++ core, so ``trainer_cls`` names a subclass of
:class:`septa.trainer.Trainer`, which has the same hooks for overriding:

* ``message(message)`` receives every piece of the training log, in order; the default calls
  the ``on_*`` hook of the event that the piece completes (only when ``verbose``, as
  python-crfsuite does);
* ``on_start(log)``, ``on_featgen_progress(log, percent)``, ``on_featgen_end(log)``,
  ``on_prepared(log)``, ``on_prepare_error(log)``, ``on_iteration(log, info)``,
  ``on_optimization_end(log)``, ``on_end(log)``.

``info`` is the iteration's record of ``logparser.iterations``: python-crfsuite's log parser
keys (``num``, ``loss``, ``time``, ``active_features``, ``scores`` and, where the algorithm
has them, ``feature_norm``, ``error_norm``, ``linesearch_trials``, ``linesearch_step``; with
held-out data ``avg_precision``, ``avg_recall``, ``avg_f1``, ``item_accuracy(_float)``,
``instance_accuracy(_float)``), plus septa's ``phase`` and ``chunk_f1``.

The events come from septa's training as follows: ``start`` before training; ``featgen_end``
and ``prepared`` together, once the features exist (just before the first iteration is
reported: septa generates features and prepares the data inside one call and reports no
percentage, so ``on_featgen_progress`` is never called); ``iteration`` after each iteration
(called from inside training: an exception raised by a hook stops training and is re-raised
by ``fit``); ``prepare_error`` when training fails before any iteration; ``optimization_end``
when training returns; ``end`` once the model is stored.
"""

import fractions
import sys
from collections import namedtuple

__all__ = ["LabelScore", "LinePerIterationTrainer", "Trainer", "TrainingLog"]

# Held-out scores of one label, as python-crfsuite's log parser gives them: counts of items
# (match: guessed and gold, model: guessed, ref: gold) and their precision, recall and F1
# (fractions; None for a label with no item guessed or gold).
LabelScore = namedtuple("LabelScore", "match model ref precision recall f1")

_EVENTS = ("start", "featgen_progress", "featgen_end", "prepared", "prepare_error", "iteration",
           "optimization_end", "end")


class TrainingLog(dict):
    """``CRF.training_log_`` (and ``Trainer.logparser``): how the last ``fit`` went.

    As a dict: ``iterations`` (count), ``seconds``, ``features``, ``stop_reason``,
    ``cancelled``, ``kept_iteration``, ``kept_metric``, ``kept_score``, ``chosen_c2``,
    ``chosen_eta``. As attributes, python-crfsuite's log parser's:

    * ``iterations``: one dict per reported iteration (see :mod:`septa.trainer`);
    * ``last_iteration``: the last of them (``{}`` when there was none);
    * ``log``: the pieces of text of the training log, ``events``: ``(event, start, end)``
      slices of ``log``, ``last_log``: the text of the latest event;
    * ``featgen_num_features`` (the model's feature count), ``training_seconds``,
      ``storing_seconds`` (writing ``model_filename``, 0 without it), ``featgen_seconds``
      (None: septa does not time feature generation apart), ``featgen_percent`` (-2: no
      percentages are reported).
    """

    def __init__(self, info=None, records=None):
        super().__init__(info or {})
        self.iterations = list(records or [])
        self.last_iteration = self.iterations[-1] if self.iterations else {}
        self.log = []
        self.events = []
        self.featgen_percent = -2
        self.featgen_num_features = None
        self.featgen_seconds = None
        self.training_seconds = None
        self.storing_seconds = None

    @property
    def last_log(self):
        """The text of the latest event ('' before any)."""
        if not self.events:
            return ""
        _, start, end = self.events[-1]
        return "".join(self.log[start:end])

    def _add(self, event, text, record=None):
        if record is not None:
            self.iterations.append(record)
            self.last_iteration = record
        start = len(self.log)
        self.log.append(text)
        self.events.append((event, start, len(self.log)))

    def __reduce__(self):
        return (TrainingLog, (dict(self), self.iterations), dict(self.__dict__))


def iteration_record(progress, previous_seconds):
    """python-crfsuite's iteration record from one septa progress report (a dict from the
    core's callback); ``previous_seconds``: the ``seconds`` of the report before it."""
    record = {
        "num": progress["iteration"],
        "phase": progress["phase"],
        "scores": {},
        "loss": progress["objective"],
        "active_features": progress["active_features"],
        "time": progress["seconds"] - previous_seconds,
    }
    if progress["feature_norm"] == progress["feature_norm"]:  # not NaN
        record["feature_norm"] = progress["feature_norm"]
    if progress["grad_norm"] != 0.0:  # algorithms without a gradient report 0
        record["error_norm"] = progress["grad_norm"]
    if progress["linesearch_trials"] > 0:
        record["linesearch_trials"] = progress["linesearch_trials"]
        record["linesearch_step"] = progress["linesearch_step"]
    accuracy, f1 = progress["dev_accuracy"], progress["dev_f1"]
    if accuracy == accuracy:  # not NaN: dev data
        record["chunk_f1"] = f1 / 100.0 if f1 == f1 else None
        # CRFsuite's holdout evaluation: per label, macro averages over every label of the
        # model (a label with nothing guessed or gold counts 0), item and sequence accuracy.
        precision_sum = recall_sum = f1_sum = 0.0
        for label, match, model, ref in progress["dev_labels"]:
            if model == 0 and ref == 0:
                record["scores"][label] = LabelScore(0, 0, 0, None, None, None)
                continue
            p = match / model if model else 0.0
            r = match / ref if ref else 0.0
            f = 2 * p * r / (p + r) if p + r > 0 else 0.0
            record["scores"][label] = LabelScore(match, model, ref, p, r, f)
            precision_sum, recall_sum, f1_sum = precision_sum + p, recall_sum + r, f1_sum + f
        count = max(len(progress["dev_labels"]), 1)
        record["avg_precision"] = precision_sum / count
        record["avg_recall"] = recall_sum / count
        record["avg_f1"] = f1_sum / count
        for key, correct, total in (
                ("item_accuracy", progress["dev_items_correct"], progress["dev_items"]),
                ("instance_accuracy", progress["dev_sequences_correct"],
                 progress["dev_sequences"])):
            value = fractions.Fraction(correct, total) if total else fractions.Fraction(0)
            record[key] = value
            record[key + "_float"] = float(value)
    return record


class Trainer:
    """Base of the classes ``CRF(trainer_cls=...)`` accepts: python-crfsuite's ``Trainer``
    hooks (see :mod:`septa.trainer`), called during septa's training.

    ``CRF.fit`` builds it as ``trainer_cls(algorithm=..., params=..., verbose=...)``:
    ``algorithm`` is the estimator's algorithm (None: septa's default), ``params`` its
    training options as ``{keyword: value}`` (those not left None), for information: changing
    them here does not change training. ``logparser`` is the :class:`TrainingLog` that becomes
    ``CRF.training_log_``. The default hooks write the log text to ``sys.stderr``.
    """

    def __init__(self, algorithm=None, params=None, verbose=True):
        self.algorithm = algorithm
        self.params = dict(params or {})
        self.verbose = verbose
        self.logparser = TrainingLog()
        self._event = None

    def _emit(self, event, text, record=None):
        """Records one event of septa's training in ``logparser`` and passes its text to
        ``message`` (called by ``CRF.fit``)."""
        self.logparser._add(event, text, record)
        self._event = event
        try:
            self.message(text)
        finally:
            self._event = None

    def message(self, message):
        """Receives each piece of the training log; calls the hook of the event it completes
        when ``verbose``."""
        event = self._event
        if not self.verbose or event is None:
            return
        if event == "iteration":
            self.on_iteration(message, self.logparser.last_iteration)
        elif event == "featgen_progress":
            self.on_featgen_progress(message, self.logparser.featgen_percent)
        else:
            getattr(self, "on_" + event)(message)

    def _write(self, log):
        sys.stderr.write(log)

    def on_start(self, log):
        self._write(log)

    def on_featgen_progress(self, log, percent):
        self._write(log)

    def on_featgen_end(self, log):
        self._write(log)

    def on_prepared(self, log):
        self._write(log)

    def on_prepare_error(self, log):
        self._write(log)

    def on_iteration(self, log, info):
        self._write(log)

    def on_optimization_end(self, log):
        self._write(log)

    def on_end(self, log):
        self._write(log)


# python-crfsuite's name for the base class its Trainer derives from.
BaseTrainer = Trainer


class LinePerIterationTrainer(Trainer):
    """The default ``trainer_cls``: with ``verbose``, one line per iteration (septa's progress
    line, as ``septa train`` prints it) and the outcome, on ``sys.stderr``; with held-out data
    a per-label table of the last iteration's scores at the end (as sklearn-crfsuite's
    ``LinePerIterationTrainer``)."""

    def on_start(self, log):
        pass

    def on_featgen_end(self, log):
        pass

    def on_prepared(self, log):
        pass

    def on_optimization_end(self, log):
        scores = self.logparser.last_iteration.get("scores") or {}
        if scores:
            rows = [(label, s.precision, s.recall, s.f1, s.ref)
                    for label, s in sorted(scores.items())]
            width = max(len("Label"), max(len(label) for label, *_ in rows))
            lines = ["%-*s  %9s  %9s  %9s  %7s" % (width, "Label", "Precision", "Recall", "F1",
                                                   "Support")]
            for label, p, r, f, ref in rows:
                cells = ["%9s" % "-" if v is None else "%9.3f" % v for v in (p, r, f)]
                lines.append("%-*s  %s  %7d" % (width, label, "  ".join(cells), ref))
            rule = "=" * len(lines[0])
            self._write("\n".join([rule] + lines + ["-" * len(lines[0])]) + "\n")
        self._write(log)

    def on_end(self, log):
        pass
