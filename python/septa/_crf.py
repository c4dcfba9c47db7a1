"""septa.CRF: an sklearn-crfsuite compatible estimator over septa's C++ core."""

import numbers

from . import _septa

__all__ = ["CRF", "ModelError", "option_defaults", "item_attributes"]

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
# Constructor arguments that are not training options.
_OWN_PARAMS = ("verbose", "model_filename", "template")


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


# ---- token features, converted as python-crfsuite does -------------------------------------

def _add_features(prefix, features, out):
    if isinstance(features, dict):
        for key, value in features.items():
            if not isinstance(key, str):
                raise ValueError("feature names must be str, got %r" % (key,))
            name = prefix + key
            if isinstance(value, bool):
                out.append((name, 1.0 if value else 0.0))
            elif isinstance(value, str):
                out.append((name + "=" + value, 1.0))
            elif isinstance(value, numbers.Real):
                out.append((name, float(value)))
            elif isinstance(value, (dict, list, tuple, set, frozenset)):
                _add_features(name + ":", value, out)
            else:
                raise ValueError("feature %r: unsupported value %r of type %s (expected float, "
                                 "bool, str, dict or list of str)"
                                 % (name, value, type(value).__name__))
    elif isinstance(features, (list, tuple, set, frozenset)):
        for value in features:
            if not isinstance(value, str):
                raise ValueError("feature lists must hold str, got %r" % (value,))
            out.append((prefix + value, 1.0))
    elif isinstance(features, str):
        out.append((prefix + features, 1.0))
    else:
        raise ValueError("unsupported token features of type %s (expected a dict or a list of "
                         "str)" % type(features).__name__)


def item_attributes(features):
    """Convert one token's features to the [(attribute, value)] list septa trains on.

    The rules are python-crfsuite's (and so sklearn-crfsuite's):

    * ``{"key": 1.5}`` -> ``("key", 1.5)``; ``{"key": True}`` -> ``("key", 1.0)``
      (``False`` -> 0.0);
    * ``{"key": "value"}`` -> ``("key=value", 1.0)``;
    * ``["a", "b"]`` -> ``("a", 1.0), ("b", 1.0)``;
    * ``{"prefix": {...}}`` and ``{"prefix": [...]}`` -> the nested features with
      ``"prefix:"`` prepended to each name.
    """
    out = []
    _add_features("", features, out)
    return out


def _check_sequences(X, what="X"):
    try:
        length = len(X)
    except TypeError:
        raise ValueError("%s must be a list of sequences, got %s" % (what, type(X).__name__))
    if isinstance(X, (str, bytes)):
        raise ValueError("%s must be a list of sequences, not a string" % what)
    return length


def _attributes(X, what="X"):
    _check_sequences(X, what)
    data = []
    for i, sequence in enumerate(X):
        if isinstance(sequence, (str, bytes, dict)):
            raise ValueError("%s[%d] must be a sequence of token features, got %s"
                             % (what, i, type(sequence).__name__))
        if len(sequence) == 0:
            raise ValueError("%s[%d] is an empty sequence" % (what, i))
        try:
            data.append([item_attributes(item) for item in sequence])
        except ValueError as e:
            raise ValueError("%s[%d]: %s" % (what, i, e)) from None
    return data


def _columns(X, what="X"):
    _check_sequences(X, what)
    data = []
    width = None
    for i, sequence in enumerate(X):
        if isinstance(sequence, (str, bytes)) or len(sequence) == 0:
            raise ValueError("%s[%d] is an empty sequence" % (what, i) if len(sequence) == 0 else
                             "%s[%d] must be a list of tokens (lists of str)" % (what, i))
        rows = []
        for t, token in enumerate(sequence):
            if isinstance(token, str):
                token = [token]
            token = list(token)
            if not token or not all(isinstance(field, str) for field in token):
                raise ValueError("%s[%d][%d]: a token must be a non-empty list of str columns, "
                                 "got %r" % (what, i, t, token))
            if any(not field or any(c.isspace() for c in field) for field in token):
                raise ValueError("%s[%d][%d]: columns must be non-empty and without whitespace, "
                                 "got %r" % (what, i, t, token))
            if width is None:
                width = len(token)
            elif len(token) != width:
                raise ValueError("%s[%d][%d]: %d columns where earlier tokens have %d"
                                 % (what, i, t, len(token), width))
            rows.append(token)
        data.append(rows)
    return data


def _labels(X, y, x_what="X", y_what="y"):
    if len(X) != len(y):
        raise ValueError("%s and %s differ in length: %d sequences vs %d"
                         % (x_what, y_what, len(X), len(y)))
    labels = []
    for i, (xs, ys) in enumerate(zip(X, y)):
        if isinstance(ys, (str, bytes)):
            raise ValueError("%s[%d] must be a sequence of labels, not a single string"
                             % (y_what, i))
        ys = list(ys)
        if len(ys) != len(xs):
            raise ValueError("sequence %d: %s[%d] has %d items but %s[%d] has %d labels"
                             % (i, x_what, i, len(xs), y_what, i, len(ys)))
        for t, label in enumerate(ys):
            if not isinstance(label, str):
                raise ValueError("%s[%d][%d]: labels must be str, got %r (%s)"
                                 % (y_what, i, t, label, type(label).__name__))
            if not label or any(c.isspace() for c in label):
                raise ValueError("%s[%d][%d]: labels must be non-empty and without whitespace, "
                                 "got %r" % (y_what, i, t, label))
        labels.append(ys)
    return labels


class CRF:
    """A linear-chain CRF with sklearn-crfsuite's estimator interface.

    Replace ``import sklearn_crfsuite`` / ``sklearn_crfsuite.CRF(...)`` with
    ``import septa`` / ``septa.CRF(...)``; the rest of the code stays.

    Parameters
    ----------
    algorithm : str, default 'lbfgs'
        ``'lbfgs'`` (standard CRF: L-BFGS, or OWL-QN when ``c1 > 0``), ``'separate'``
        (CR-F separate training: unary and pairwise factors trained independently and in
        parallel), ``'separate-counts'``, ``'piecewise'``, ``'memm'`` or ``'ap'`` (averaged perceptron).
    c1, c2 : float
        L1 and L2 regularisation coefficients, with CRFsuite's meaning
        (penalty ``c1*|w|_1 + c2*|w|^2``). Defaults: 0 and 1.
    max_iterations : int
        Optimiser iterations at most.
    all_possible_states, all_possible_transitions : bool
        Create state features for every (attribute, label) pair and transition features for
        every label pair, not only those observed in training.
    min_freq : int
        Drop features seen fewer times in the training data.
    num_threads : int
        Worker threads; the trained model does not depend on it.
    verbose : bool
        Print one progress line per iteration to ``sys.stderr``.
    model_filename : str, optional
        When given, ``fit`` also saves the model there (a file ``septa tag`` reads).
    template : str, optional
        Path of a CRF++ feature template. With a template, ``X`` is token-column input:
        each sequence is a list of tokens, each token a list of str columns (e.g.
        ``["Confidence", "NN"]``), and the template's ``%x[row,col]`` macros expand them to
        features exactly as ``septa train -t TEMPLATE`` does. ``template='default'`` uses the
        built-in CoNLL-2000 chunking template (columns: word, POS).
    **options
        Any other option of ``septa train`` (``period``, ``delta``, ``epsilon``, ``seed``,
        ``floor``, ``local_optimizer``, ``epochs``...), with '-' written '_'; see
        :func:`septa.option_defaults`.

    Every option left at ``None`` takes septa's default. Options are checked by ``fit``
    (``ValueError`` naming the parameter and its allowed range).

    Attributes
    ----------
    classes_ : list of str
        The labels, in the model's order (the order of marginals).
    state_features_ : dict
        ``{(attribute, label): weight}``.
    transition_features_ : dict
        ``{(label_from, label_to): weight}``.
    training_log_ : dict
        Iterations, seconds, feature count and stop reason of the last ``fit``.
    """

    def __init__(self, algorithm=None, c1=None, c2=None, max_iterations=None,
                 all_possible_states=None, all_possible_transitions=None, min_freq=None,
                 num_threads=None, verbose=False, model_filename=None, template=None,
                 **options):
        for key in options:
            if key not in _OPTIONS:
                raise TypeError("CRF() got an unexpected keyword argument %r (known options: %s)"
                                % (key, ", ".join(sorted(_OPTIONS))))
        self.algorithm = algorithm
        self.c1 = c1
        self.c2 = c2
        self.max_iterations = max_iterations
        self.all_possible_states = all_possible_states
        self.all_possible_transitions = all_possible_transitions
        self.min_freq = min_freq
        self.num_threads = num_threads
        self.verbose = verbose
        self.model_filename = model_filename
        self.template = template
        for key, value in options.items():
            setattr(self, key, value)
        self._model = None
        self.training_log_ = None

    # ---- sklearn parameter protocol -------------------------------------------------------

    def get_params(self, deep=True):
        """Return the constructor parameters as a dict (sklearn's protocol)."""
        params = {key: getattr(self, key, None) for key in _OPTIONS}
        params.update({key: getattr(self, key) for key in _OWN_PARAMS})
        return params

    def set_params(self, **params):
        """Set constructor parameters (sklearn's protocol); returns self."""
        valid = set(_OPTIONS) | set(_OWN_PARAMS)
        for key, value in params.items():
            if key not in valid:
                raise ValueError("invalid parameter %r for CRF (valid: %s)"
                                 % (key, ", ".join(sorted(valid))))
            setattr(self, key, value)
        return self

    def _option_values(self):
        values = {}
        for key, (cli_name, _, _) in _OPTIONS.items():
            value = getattr(self, key, None)
            if value is None:
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
        iteration, objective, grad_norm, active_features, seconds, dev_accuracy, dev_f1);
        returning ``False`` stops training (the model so far is kept).

        The GIL is released while training runs. Ctrl-C stops training cleanly: the best
        model so far is kept on the estimator and ``KeyboardInterrupt`` is raised. An
        exception raised by ``callback`` (or by ``sys.stderr`` when verbose) also stops
        training and is re-raised.
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
        verbose = bool(self.verbose)
        if self.template is not None:
            x = _columns(X)
            labels = _labels(x, y)
            x_dev = _columns(X_dev, "X_dev") if X_dev is not None else []
            labels_dev = _labels(x_dev, y_dev, "X_dev", "y_dev") if X_dev is not None else []
            path = "" if self.template == "default" else str(self.template)
            model, info = _septa.train_columns(x, labels, path, "", options, x_dev, labels_dev,
                                               verbose, callback)
        else:
            x = _attributes(X)
            labels = _labels(x, y)
            x_dev = _attributes(X_dev, "X_dev") if X_dev is not None else []
            labels_dev = _labels(x_dev, y_dev, "X_dev", "y_dev") if X_dev is not None else []
            model, info = _septa.train_attributes(x, labels, options, x_dev, labels_dev,
                                                  verbose, callback)
        self._model = model
        error = info.pop("error")
        self.training_log_ = info
        if error is not None:
            raise error
        if info["cancelled"] and not info["stopped_by_callback"]:
            raise KeyboardInterrupt("training stopped; the best model so far is kept")
        if self.model_filename:
            model.save(str(self.model_filename))
        return self

    # ---- prediction -----------------------------------------------------------------------

    def _require_model(self):
        if self._model is None:
            raise AttributeError("this CRF is not fitted yet: call fit() or CRF.load() first")
        return self._model

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
        """The labels, in the order of the model (and of marginals)."""
        return list(self._require_model().labels)

    @property
    def state_features_(self):
        """``{(attribute, label): weight}`` for every state feature of the model."""
        return {(a, b): w for a, b, w in self._require_model().state_features()}

    @property
    def transition_features_(self):
        """``{(label_from, label_to): weight}`` for every transition of the model."""
        return {(a, b): w for a, b, w in self._require_model().transition_features()}

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
