"""septa: linear-chain CRFs with standard and separate (CR-F) training.

A drop-in replacement for sklearn-crfsuite::

    import septa
    crf = septa.CRF(algorithm="separate", c2=0.1, max_iterations=100)
    crf.fit(X_train, y_train)
    y_pred = crf.predict(X_test)
    print(septa.metrics.chunk_classification_report(y_test, y_pred))

Models are the files of the ``septa`` command-line tool (``CRF.save``/``CRF.load``).
"""

from . import metrics, trainer, utils
from ._crf import CRF, ModelError, Tagger, item_attributes, option_defaults
from ._merge import merge

__version__ = "0.1.0"
__all__ = ["CRF", "ModelError", "Tagger", "item_attributes", "merge", "metrics",
           "option_defaults", "scorers", "trainer", "utils"]


def __getattr__(name):
    # septa.scorers needs scikit-learn: imported on first use only.
    if name == "scorers":
        import importlib
        return importlib.import_module(".scorers", __name__)
    raise AttributeError("module 'septa' has no attribute %r" % name)
