"""Training and tagging input as python-crfsuite takes it: token features to attribute
lists, sequences and labels checked with their place (X[i][t])."""

import numbers

# ---- token features, converted as python-crfsuite does -------------------------------------

_MAX_VALUE = 3.4028234663852886e38  # the largest finite float


def _text(value):
    """str as is, bytes decoded as UTF-8 (python-crfsuite accepts both)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value


def _add_features(prefix, features, out):
    if isinstance(features, dict):
        for key, value in features.items():
            key = _text(key)
            if not isinstance(key, str):
                raise ValueError("feature names must be str, got %r" % (key,))
            name = prefix + key
            if isinstance(value, bool):
                out.append((name, 1.0 if value else 0.0))
            elif isinstance(value, (str, bytes)):
                out.append((name + ":" + _text(value), 1.0))
            elif isinstance(value, numbers.Real):
                number = float(value)
                # Values are stored as float: beyond its range they would become infinite.
                if not -_MAX_VALUE <= number <= _MAX_VALUE:
                    raise ValueError("feature %r: value %r is not finite or outside the float "
                                     "range (|value| <= %r)" % (name, value, _MAX_VALUE))
                out.append((name, number))
            elif isinstance(value, (dict, list, tuple, set, frozenset)):
                _add_features(name + ":", value, out)
            else:
                raise ValueError("feature %r: unsupported value %r of type %s (expected float, "
                                 "bool, str, dict or list of str)"
                                 % (name, value, type(value).__name__))
    elif isinstance(features, (list, tuple, set, frozenset)):
        for value in features:
            value = _text(value)
            if not isinstance(value, str):
                raise ValueError("feature lists must hold str, got %r" % (value,))
            out.append((prefix + value, 1.0))
    elif isinstance(features, (str, bytes)):
        out.append((prefix + _text(features), 1.0))
    else:
        raise ValueError("unsupported token features of type %s (expected a dict or a list of "
                         "str)" % type(features).__name__)


def item_attributes(features):
    """Convert one token's features to the [(attribute, value)] list septa trains on.

    The rules are python-crfsuite's (and so sklearn-crfsuite's):

    * ``{"key": 1.5}`` -> ``("key", 1.5)``; ``{"key": True}`` -> ``("key", 1.0)``
      (``False`` -> 0.0);
    * ``{"key": "value"}`` -> ``("key:value", 1.0)`` (bytes are decoded as UTF-8);
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
        items = []
        for t, item in enumerate(sequence):
            try:
                items.append(item_attributes(item))
            except ValueError as e:
                raise ValueError("%s[%d][%d]: %s" % (what, i, t, e)) from None
        data.append(items)
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


def _label_text(label):
    """Labels are strings inside the model: bytes are decoded, numbers written as text."""
    if isinstance(label, bytes):
        return label.decode("utf-8")
    if isinstance(label, numbers.Number) and not isinstance(label, bool):
        return str(label)
    return label


def _labels(X, y, x_what="X", y_what="y"):
    if len(X) != len(y):
        raise ValueError("%s and %s differ in length: %d sequences vs %d"
                         % (x_what, y_what, len(X), len(y)))
    labels = []
    for i, (xs, ys) in enumerate(zip(X, y)):
        if isinstance(ys, (str, bytes)):
            raise ValueError("%s[%d] must be a sequence of labels, not a single string"
                             % (y_what, i))
        ys = [_label_text(label) for label in ys]
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
