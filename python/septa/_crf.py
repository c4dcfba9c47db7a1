"""septa.CRF: an sklearn-crfsuite compatible estimator over septa's C++ core."""

import numbers

from . import _septa
from .trainer import LinePerIterationTrainer, Trainer, TrainingLog, iteration_record
from ._inputs import (_attributes, _check_sequences, _columns, _labels,
                      item_attributes)
from ._tagger import Tagger

__all__ = ["CRF", "ModelError", "Tagger", "TrainingLog", "option_defaults", "item_attributes"]

ModelError = _septa.ModelError

# Python keyword -> option name of the C++ table, where they differ (sklearn-crfsuite's names).
_RENAMED = {"num_threads": "threads"}
_OPTION_SPECS = _septa.option_specs()  # [(cli name, help, default as text)]


def _python_name(cli_name):
    python_name = cli_name.replace("-", "_")
    for python, cli in _RENAMED.items():
        if cli == cli_name:
            return python
    return python_name


# Every training option, by Python keyword: (cli name, help, default as text). Derived from the
# C++ option table, so new options appear here without touching this file.
_OPTIONS = {_python_name(name): (name, help_text, default)
            for name, help_text, default in _OPTION_SPECS}


def option_defaults():
    """Return {keyword: (default value as text, help)} for every training option.

    The list comes from septa's C++ option table, so it matches ``septa train --help``.
    """
    return {key: (default, help_text) for key, (_, help_text, default) in _OPTIONS.items()}


def _option_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    if isinstance(value, str):
        return value
    raise TypeError("expected a number, bool or str, got %s" % type(value).__name__)


# sklearn-crfsuite's constructor parameters, in its order. Those that are not options of
# septa's table (below) are accepted and must stay None: fit() says they are not supported.
_CRFSUITE_PARAMS = (
    "algorithm", "min_freq", "all_possible_states", "all_possible_transitions", "c1", "c2",
    "max_iterations", "num_memories", "epsilon", "period", "delta", "linesearch",
    "max_linesearch", "calibration_eta", "calibration_rate", "calibration_samples",
    "calibration_candidates", "calibration_max_trials", "pa_type", "c", "error_sensitive",
    "averaging", "variance", "gamma")
_UNSUPPORTED = tuple(name for name in _CRFSUITE_PARAMS if name not in _OPTIONS)
# Constructor arguments that are not training options.
_OWN_PARAMS = ("verbose", "model_filename", "keep_tempfiles", "trainer_cls", "template")


class CRF:
    """A linear-chain CRF with sklearn-crfsuite's estimator interface.

    Replace ``import sklearn_crfsuite`` / ``sklearn_crfsuite.CRF(...)`` with
    ``import septa`` / ``septa.CRF(...)``; the rest of the code stays.

    Parameters
    ----------
    algorithm : str, default 'lbfgs'
        ``'lbfgs'`` (standard CRF: L-BFGS, or OWL-QN when ``c1 > 0``), ``'separate'``
        (CR-F separate training: unary and pairwise factors trained independently and in
        parallel), ``'separate-counts'``, ``'piecewise'``, ``'memm'``, CRFsuite's ``'l2sgd'``
        (SGD with L2), ``'ap'`` (averaged perceptron), ``'pa'`` (passive-aggressive) and
        ``'arow'``: every algorithm of ``septa train --help``.
    c1, c2 : float
        L1 and L2 regularisation coefficients, with CRFsuite's meaning
        (penalty ``c1*|w|_1 + c2*|w|^2``). Defaults: 0 and 1.
    max_iterations : int
        Optimiser iterations at most.
    num_memories, epsilon, period, delta, linesearch, max_linesearch
        CRFsuite's L-BFGS settings (``linesearch``: 'MoreThuente', 'Backtracking',
        'StrongBacktracking'); ``period`` and ``delta`` also stop ``l2sgd``.
    calibration_eta, calibration_rate, calibration_samples, calibration_candidates,
    calibration_max_trials
        CRFsuite's ``l2sgd`` learning-rate calibration (defaults 0.1, 2, 1000, 10, 20).
    pa_type, c, error_sensitive, averaging
        ``pa`` settings; ``variance``, ``gamma``: ``arow`` settings (CRFsuite's meanings).
    all_possible_states, all_possible_transitions : bool
        Create state features for every (attribute, label) pair and transition features for
        every label pair, not only those observed in training.
    min_freq : float
        CRFsuite's meaning: keep features seen more than ``min_freq`` times (default 0: all).
    num_threads : int
        Worker threads; the trained model does not depend on it.
    verbose : bool
        Print one progress line per iteration to ``sys.stderr`` (through ``trainer_cls``'s
        hooks, which python-crfsuite calls only when verbose).
    model_filename : str, optional
        ``fit`` saves the model there; an unfitted ``CRF(model_filename=p)`` loads it on
        first use (as sklearn-crfsuite does).
    template : str, optional
        Path of a CRF++ feature template. With a template, ``X`` is token-column input:
        each sequence is a list of tokens, each token a list of str columns (e.g.
        ``["Confidence", "NN"]``), and the template's ``%x[row,col]`` macros expand them to
        features exactly as ``septa train -t TEMPLATE`` does. ``template='default'`` uses the
        built-in CoNLL-2000 chunking template (columns: word, POS).
    trainer_cls : class, optional
        A subclass of :class:`septa.trainer.Trainer` (python-crfsuite's ``Trainer`` hooks:
        ``on_start``, ``on_iteration(log, info)``, ``on_optimization_end``... see
        :mod:`septa.trainer`), built as ``trainer_cls(algorithm=..., params=...,
        verbose=...)`` by every ``fit``; its ``logparser`` becomes ``training_log_``. Default
        :class:`septa.trainer.LinePerIterationTrainer`. Anything else (a ``pycrfsuite.Trainer``
        included) raises ``TypeError``.
    keep_tempfiles
        Accepted for sklearn-crfsuite compatibility; septa writes no temporary files.
    **options
        Any other option of ``septa train`` (``seed``, ``floor``, ``local_optimizer``,
        ``epochs``...), with '-' written '_'; see :func:`septa.option_defaults`.

    Every option left at ``None`` takes septa's default. Options are checked by ``fit``
    (``ValueError`` naming the parameter and its allowed range).

    Attributes (None before ``fit``)
    ----------
    classes_ : list of str
        The labels, in the model's order (the order of marginals).
    state_features_ : dict
        ``{(attribute, label): weight}`` for every non-zero state feature.
    transition_features_ : dict
        ``{(label_from, label_to): weight}`` for every non-zero transition.
    attributes_, num_attributes_ : list of str, int
        The attribute names the model knows (and their number).
    size_ : int
        Size of the model file in bytes.
    conditioned_transition_features_ : dict
        ``{(edge attribute, label_from, label_to): weight}`` of observation-conditioned
        transitions (CRF++ ``B01:%x[0,0]`` template lines), empty without them.
    tagger_ : Tagger
        python-crfsuite's tagger interface: ``tag``, ``probability``, ``marginal``
        (also as ``tagger``, sklearn-crfsuite's first name for it).
    training_log_ : TrainingLog
        Iterations, seconds, feature count and stop reason of the last ``fit``; with dev
        data also ``kept_iteration``, ``kept_metric`` ("F1" or "accuracy") and ``kept_score``
        of the iteration whose weights were kept; ``training_log_.iterations`` holds one
        record per iteration (python-crfsuite's log parser's ``num``, ``loss``,
        ``feature_norm``, per-label ``scores``...: see :class:`septa.trainer.TrainingLog`).
    """

    def __init__(self, algorithm=None, min_freq=None, all_possible_states=None,
                 all_possible_transitions=None, c1=None, c2=None, max_iterations=None,
                 num_memories=None, epsilon=None, period=None, delta=None, linesearch=None,
                 max_linesearch=None, calibration_eta=None, calibration_rate=None,
                 calibration_samples=None, calibration_candidates=None,
                 calibration_max_trials=None, pa_type=None, c=None, error_sensitive=None,
                 averaging=None, variance=None, gamma=None, verbose=False, model_filename=None,
                 keep_tempfiles=False, trainer_cls=None, template=None, num_threads=None,
                 **options):
        for key in options:
            if key not in _OPTIONS:
                raise TypeError("CRF() got an unexpected keyword argument %r (known options: %s)"
                                % (key, ", ".join(sorted(_OPTIONS))))
        given = dict(locals())
        for key in _CRFSUITE_PARAMS + _OWN_PARAMS + ("num_threads",):
            setattr(self, key, given[key])
        for key, value in options.items():
            setattr(self, key, value)
        self._model = None
        self.training_log_ = None

    # ---- sklearn parameter protocol -------------------------------------------------------

    def get_params(self, deep=True):
        """Return the constructor parameters as a dict (sklearn's protocol)."""
        params = {key: getattr(self, key, None) for key in _OPTIONS}
        params.update({key: getattr(self, key, None) for key in _UNSUPPORTED})
        params.update({key: getattr(self, key, None) for key in _OWN_PARAMS})
        return params

    def set_params(self, **params):
        """Set constructor parameters (sklearn's protocol); returns self."""
        valid = set(_OPTIONS) | set(_UNSUPPORTED) | set(_OWN_PARAMS)
        for key, value in params.items():
            if key not in valid:
                raise ValueError("invalid parameter %r for CRF (valid: %s)"
                                 % (key, ", ".join(sorted(valid))))
            setattr(self, key, value)
        return self

    def _option_values(self):
        for key in _UNSUPPORTED:
            if getattr(self, key, None) is not None:
                raise ValueError("CRF parameter %s=%r is not supported by septa (it belongs to a "
                                 "CRFsuite algorithm septa does not have); leave it None"
                                 % (key, getattr(self, key)))
        values = {}
        for key, (cli_name, _, _) in _OPTIONS.items():
            value = getattr(self, key, None)
            if value is None:
                continue
            if key == "min_freq":
                # CRFsuite keeps features seen more than min_freq times; septa's table (as
                # CRF++'s -f) keeps those seen at least min-freq times.
                if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                        or not value >= 0 or value > 1e9):
                    raise ValueError("CRF parameter min_freq=%r is invalid: allowed 0 to 1e9 "
                                     "(features seen more than min_freq times are kept)"
                                     % (value,))
                values[cli_name] = str(int(value // 1) + 1)
                continue
            try:
                text = _option_text(value)
                _septa.check_option(cli_name, text)
            except (TypeError, ValueError) as e:
                raise ValueError("CRF parameter %s=%r is invalid: %s" % (key, value, e)) from None
            values[cli_name] = text
        return values

    # ---- training -------------------------------------------------------------------------

    def fit(self, X, y, X_dev=None, y_dev=None, callback=None):
        """Train on sequences ``X`` with label sequences ``y``; returns self.

        ``X`` is a list of sequences; each item is a dict of features, a list of str, or
        (with ``template``) a list of str columns. ``y`` is a list of lists of str labels.
        ``X_dev``/``y_dev`` are held-out data: their scores are reported per iteration
        (``verbose``) and the best model on them is kept.

        ``callback``, if given, is called after each iteration with a dict (phase,
        iteration, objective, grad_norm, active_features, seconds, dev_accuracy, dev_f1,
        feature_norm, linesearch_trials, linesearch_step, dev_labels, dev_items...), after the
        ``trainer_cls`` hook of that iteration; returning ``False`` stops training (the model
        so far is kept).

        The GIL is released while training runs. Ctrl-C stops training cleanly: the best
        model so far is kept on the estimator and ``KeyboardInterrupt`` is raised. An
        exception raised by ``callback`` or by a ``trainer_cls`` hook (or by ``sys.stderr``
        when verbose) also stops training and is re-raised.
        """
        options = self._option_values()
        if (X_dev is None) != (y_dev is None):
            raise ValueError("give both X_dev and y_dev, or neither")
        _check_sequences(X)
        _check_sequences(y, "y")
        if len(X) != len(y):
            raise ValueError("X and y differ in length: %d sequences vs %d" % (len(X), len(y)))
        if len(X) == 0:
            raise ValueError("X is empty: no training sequences")
        trainer = self._trainer()
        log = trainer.logparser
        items = sum(len(xseq) for xseq in X)
        trainer._emit("start", "septa: training %s on %d sequences (%d items)%s\n" % (
            self.algorithm or _OPTIONS["algorithm"][2], len(X), items,
            "" if X_dev is None else ", held-out %d sequences" % len(X_dev)))
        state = {"prepared": False, "seconds": 0.0}
        user_callback = callback

        def prepared():
            if not state["prepared"]:
                state["prepared"] = True
                trainer._emit("featgen_end", "septa: features generated\n")
                trainer._emit("prepared", "septa: data prepared, training starts\n")

        def callback(progress):
            prepared()
            record = iteration_record(progress, state["seconds"])
            state["seconds"] = progress["seconds"]
            trainer._emit("iteration", progress["line"] + "\n", record)
            return None if user_callback is None else user_callback(progress)

        try:
            if self.template is not None:
                x = _columns(X)
                labels = _labels(x, y)
                x_dev = _columns(X_dev, "X_dev") if X_dev is not None else []
                labels_dev = (_labels(x_dev, y_dev, "X_dev", "y_dev") if X_dev is not None
                              else [])
                path = "" if self.template == "default" else str(self.template)
                model, info = _septa.train_columns(x, labels, path, "", options, x_dev,
                                                   labels_dev, False, callback)
            else:
                x = _attributes(X)
                labels = _labels(x, y)
                x_dev = _attributes(X_dev, "X_dev") if X_dev is not None else []
                labels_dev = (_labels(x_dev, y_dev, "X_dev", "y_dev") if X_dev is not None
                              else [])
                model, info = _septa.train_attributes(x, labels, options, x_dev, labels_dev,
                                                      False, callback)
        except Exception as e:
            if not state["prepared"]:
                trainer._emit("prepare_error", "septa: training failed: %s\n" % e)
            raise
        self._model = model
        error = info.pop("error")
        kept_line = info.pop("kept_line")
        log.update(info)
        log.featgen_num_features = info["features"]
        log.training_seconds = info["seconds"]
        self.training_log_ = log
        if error is not None:
            raise error
        prepared()
        trainer._emit("optimization_end", "septa: %s after %d iterations, %.3f s, %d features\n%s"
                      % (info["stop_reason"] or "done", info["iterations"], info["seconds"],
                         info["features"], "" if kept_line is None else kept_line + "\n"))
        if info["cancelled"] and not info["stopped_by_callback"]:
            raise KeyboardInterrupt("training stopped; the best model so far is kept")
        import time
        begin = time.perf_counter()
        if self.model_filename:
            model.save(str(self.model_filename))
        log.storing_seconds = time.perf_counter() - begin
        trainer._emit("end", "septa: model of %d bytes%s\n" % (
            len(model.to_bytes()),
            " saved to %s" % self.model_filename if self.model_filename else ""))
        return self

    def _trainer(self):
        """The ``trainer_cls`` instance that reports this fit (python-crfsuite's protocol)."""
        trainer_cls = getattr(self, "trainer_cls", None) or LinePerIterationTrainer
        if not (isinstance(trainer_cls, type) and issubclass(trainer_cls, Trainer)):
            raise TypeError(
                "CRF parameter trainer_cls=%r is not a subclass of septa.trainer.Trainer: septa "
                "trains in its own core, so a pycrfsuite.Trainer cannot drive it; subclass "
                "septa.trainer.Trainer (or LinePerIterationTrainer) and override its on_* hooks"
                % (trainer_cls,))
        params = {key: value for key, value in self.get_params().items()
                  if key in _OPTIONS and value is not None and key != "algorithm"}
        trainer = trainer_cls(algorithm=self.algorithm, params=params,
                              verbose=bool(self.verbose))
        if not isinstance(getattr(trainer, "logparser", None), TrainingLog):
            raise TypeError("CRF parameter trainer_cls=%s: its instance has no "
                            "septa.trainer.TrainingLog as logparser (call Trainer.__init__)"
                            % trainer_cls.__name__)
        return trainer

    # ---- prediction -----------------------------------------------------------------------

    def _loaded_model(self):
        """The model: fitted, loaded, or read from ``model_filename`` on first use."""
        if self._model is None and self.model_filename:
            import os
            if os.path.exists(str(self.model_filename)):
                self._model = _septa.Model.load(str(self.model_filename))
        return self._model

    def _require_model(self):
        model = self._loaded_model()
        if model is None:
            raise AttributeError("this CRF is not fitted yet: call fit() or CRF.load() first")
        return model

    def _tag(self, X, marginals):
        model = self._require_model()
        if model.input_format == "columns":
            x = _columns(X)
            return model.tag_columns(x, marginals)
        return model.tag_attributes(_attributes(X), marginals)

    def predict(self, X):
        """Return the most likely label sequence (Viterbi) of every sequence in ``X``."""
        return [labels for labels, _, _ in self._tag(X, False)]

    def predict_single(self, xseq):
        """Return the most likely label sequence of one sequence."""
        return self.predict([xseq])[0]

    def predict_marginals(self, X):
        """Return, for every sequence, a list of ``{label: P(y_t = label | x)}`` per token."""
        classes = self._require_model().labels
        return [[dict(zip(classes, row)) for row in marginals]
                for _, _, marginals in self._tag(X, True)]

    def predict_marginals_single(self, xseq):
        """Return ``{label: P(y_t = label | x)}`` for every token of one sequence."""
        return self.predict_marginals([xseq])[0]

    def score(self, X, y):
        """Token accuracy of ``predict(X)`` against ``y`` (sklearn-crfsuite's default score)."""
        from .metrics import flat_accuracy_score
        return flat_accuracy_score(y, self.predict(X))

    # ---- inspection -----------------------------------------------------------------------

    @property
    def classes_(self):
        """The labels, in the order of the model (and of marginals); None before fit."""
        model = self._loaded_model()
        return None if model is None else list(model.labels)

    @property
    def state_features_(self):
        """``{(attribute, label): weight}`` for every non-zero state feature; None before fit."""
        model = self._loaded_model()
        if model is None:
            return None
        return {(a, b): w for a, b, w in model.state_features() if w != 0.0}

    @property
    def transition_features_(self):
        """``{(label_from, label_to): weight}`` for every non-zero transition; None before fit."""
        model = self._loaded_model()
        if model is None:
            return None
        return {(a, b): w for a, b, w in model.transition_features() if w != 0.0}

    @property
    def conditioned_transition_features_(self):
        """``{(attribute, label_from, label_to): weight}`` for every non-zero
        observation-conditioned transition (CRF++ ``B01:%x[0,0]`` template lines); empty for
        templates without them and for attribute input; None before fit."""
        model = self._loaded_model()
        if model is None:
            return None
        return {(a, b, c): w for a, b, c, w in model.conditioned_transition_features()
                if w != 0.0}

    @property
    def attributes_(self):
        """The attribute names the model knows, in its order; None before fit."""
        model = self._loaded_model()
        return None if model is None else list(model.attributes)

    @property
    def num_attributes_(self):
        """The number of attributes the model knows; None before fit."""
        model = self._loaded_model()
        return None if model is None else len(model.attributes)

    @property
    def size_(self):
        """Size of the model file in bytes; None before fit."""
        model = self._loaded_model()
        return None if model is None else len(model.to_bytes())

    @property
    def tagger_(self):
        """python-crfsuite's tagger interface over the model (``Tagger``); None before fit."""
        model = self._loaded_model()
        return None if model is None else Tagger(model)

    @property
    def tagger(self):
        """The name sklearn-crfsuite 0.1 gave ``tagger_`` (its own tests still use it)."""
        return self.tagger_

    @property
    def algorithm_(self):
        """The algorithm that trained the model (also for loaded models)."""
        return self._require_model().algorithm

    def dump(self, top=20):
        """Readable text of the model (as ``septa dump``): labels, transitions, top features."""
        return self._require_model().dump(top)

    # ---- persistence ----------------------------------------------------------------------

    def save(self, path):
        """Write the model file (the format ``septa train`` writes and ``septa tag`` reads)."""
        self._require_model().save(str(path))

    @classmethod
    def load(cls, path):
        """Return a fitted CRF read from a model file written by ``save`` or ``septa train``.

        Raises ``OSError`` when the file cannot be read and ``septa.ModelError`` (a
        ``ValueError``) when it is not a valid septa model.
        """
        model = _septa.Model.load(str(path))
        # A column-format model carries its own template: predict() needs no ``template``.
        crf = cls(algorithm=model.algorithm)
        crf._model = model
        return crf

    def __getstate__(self):
        state = {key: value for key, value in self.__dict__.items() if key != "_model"}
        state["_model_bytes"] = self._model.to_bytes() if self._model is not None else None
        return state

    def __setstate__(self, state):
        state = dict(state)
        model_bytes = state.pop("_model_bytes", None)
        self.__dict__.update(state)
        self._model = _septa.Model.from_bytes(model_bytes) if model_bytes is not None else None

    def __repr__(self):
        params = ", ".join("%s=%r" % (k, v) for k, v in sorted(self.get_params().items())
                           if v is not None and v is not False)
        return "CRF(%s)" % params
