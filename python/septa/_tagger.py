"""python-crfsuite's ``Tagger`` interface over a trained septa model (``CRF.tagger_``)."""

import math

from ._inputs import _attributes, _columns, _label_text

__all__ = ["Tagger"]


class Tagger:
    """python-crfsuite's ``Tagger`` over a septa model (``CRF.tagger_``).

    ``set(xseq)`` fixes the sequence; ``tag()``, ``probability(yseq)`` and
    ``marginal(label, position)`` then refer to it.
    """

    def __init__(self, model):
        self._model = model
        self._x = None
        self._marginals = None

    def labels(self):
        """The labels of the model."""
        return list(self._model.labels)

    def set(self, xseq):
        """Set the sequence that ``tag``, ``probability`` and ``marginal`` refer to."""
        if self._model.input_format == "columns":
            self._x = _columns([xseq], "xseq")[0]
        else:
            self._x = _attributes([xseq], "xseq")[0]
        self._marginals = None

    def _require_x(self):
        if self._x is None:
            raise ValueError("no sequence: call set(xseq) or tag(xseq) first")
        return self._x

    def tag(self, xseq=None):
        """The most likely labelling of ``xseq`` (or of the sequence given to ``set``)."""
        if xseq is not None:
            self.set(xseq)
        x = self._require_x()
        if self._model.input_format == "columns":
            return self._model.tag_columns([x], False)[0][0]
        return self._model.tag_attributes([x], False)[0][0]

    def probability(self, yseq):
        """P(yseq | x) of the current sequence under the model."""
        x = self._require_x()
        labels = [_label_text(label) for label in yseq]
        try:
            if self._model.input_format == "columns":
                return math.exp(self._model.log_probability_columns(x, labels))
            return math.exp(self._model.log_probability_attributes(x, labels))
        except ValueError as e:
            raise ValueError("probability(yseq): %s" % e) from None

    def marginal(self, y, pos):
        """P(y_pos = y | x) of the current sequence."""
        x = self._require_x()
        if self._marginals is None:
            tag = (self._model.tag_columns if self._model.input_format == "columns"
                   else self._model.tag_attributes)
            self._marginals = tag([x], True)[0][2]
        labels = list(self._model.labels)
        y = _label_text(y)
        if y not in labels:
            raise ValueError("marginal(): %r is not a label of the model" % (y,))
        if not 0 <= pos < len(self._marginals):
            raise IndexError("marginal(): position %d outside the sequence of %d items"
                             % (pos, len(self._marginals)))
        return self._marginals[pos][labels.index(y)]

    def info(self):
        """The model's parameters, as python-crfsuite's ``Tagger.info()`` (its ``ParsedDump``):

        * ``labels``: ``{label: id}``, ``attributes``: ``{attribute: id}`` (ids in the
          model's order, ints where python-crfsuite gives the dump's text);
        * ``transitions``: ``{(label_from, label_to): weight}`` and ``state_features``:
          ``{(attribute, label): weight}``, the non-zero weights (CRFsuite stores no others);
        * ``header``: python-crfsuite's ``magic``, ``version``, ``type``, ``size`` (bytes of
          the model), ``num_labels``, ``num_attrs`` and ``num_features`` (the non-zero
          weights, conditioned transitions included) from septa's model file, plus septa's
          ``algorithm`` and ``input_format``. CRFsuite's section offsets (``off_features``...)
          have no counterpart in septa's format and are absent.

        septa adds ``conditioned_transitions``: ``{(attribute, label_from, label_to): weight}``
        of CRF++ ``B01:%x[0,0]`` template lines (empty without them).
        """
        import struct
        from types import SimpleNamespace
        model = self._model
        data = model.to_bytes()
        transitions = {(a, b): w for a, b, w in model.transition_features() if w != 0}
        state_features = {(a, b): w for a, b, w in model.state_features() if w != 0}
        conditioned = {(a, b, c): w for a, b, c, w in model.conditioned_transition_features()
                       if w != 0}
        header = {
            "magic": data[:8].decode("ascii"),
            "version": struct.unpack_from("=I", data, 8)[0],
            "type": "crf1d",  # CRFsuite's name of a first-order linear chain
            "size": len(data),
            "num_features": len(state_features) + len(transitions) + len(conditioned),
            "num_labels": len(model.labels),
            "num_attrs": len(model.attributes),
            "algorithm": model.algorithm,
            "input_format": model.input_format,
        }
        return SimpleNamespace(
            header=header,
            labels={label: i for i, label in enumerate(model.labels)},
            attributes={a: i for i, a in enumerate(model.attributes)},
            transitions=transitions,
            state_features=state_features,
            conditioned_transitions=conditioned)
