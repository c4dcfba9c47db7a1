"""CRF(trainer_cls=...): python-crfsuite's Trainer hooks called during septa's training, the
log parser's iteration records in training_log_, and tagger_.info() (issue 16)."""

import fractions
import math
import pickle

import pytest

import septa
from conftest import generate
from septa.trainer import LabelScore, LinePerIterationTrainer, Trainer, TrainingLog

# python-crfsuite's log parser keys of one L-BFGS iteration, and those it adds with held-out data.
LBFGS_KEYS = {"num", "scores", "loss", "feature_norm", "error_norm", "active_features",
              "linesearch_trials", "linesearch_step", "time"}
HOLDOUT_KEYS = {"avg_precision", "avg_recall", "avg_f1", "item_accuracy", "item_accuracy_float",
                "instance_accuracy", "instance_accuracy_float"}


def features(sentences):
    return [[{"w=" + word.lower(): 1.0, "pos=" + pos: 1.0} for word, pos in s] for s in sentences]


@pytest.fixture(scope="module")
def chunks():
    sentences, labels = generate(60, seed=11)
    dev_sentences, dev_labels = generate(15, seed=12)
    return features(sentences), labels, features(dev_sentences), dev_labels


class Recorder(Trainer):
    """Overrides every hook, as a user's python-crfsuite Trainer subclass would."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = []

    def on_start(self, log):
        self.calls.append(("start", log))

    def on_featgen_end(self, log):
        self.calls.append(("featgen_end", log))

    def on_prepared(self, log):
        self.calls.append(("prepared", log))

    def on_iteration(self, log, info):
        self.calls.append(("iteration", info))

    def on_optimization_end(self, log):
        self.calls.append(("optimization_end", log))

    def on_end(self, log):
        self.calls.append(("end", log))


def run_recorded(**kwargs):
    """Fits with a Recorder and returns (estimator, the Recorder instance)."""
    made = []

    class Kept(Recorder):
        def __init__(self, **kw):
            super().__init__(**kw)
            made.append(self)

    return kwargs.pop("crf", septa.CRF)(trainer_cls=Kept, **kwargs), made


def test_on_iteration_once_per_iteration_with_the_log_parser_keys(chunks):
    X, y, X_dev, y_dev = chunks
    crf, made = run_recorded(c2=0.1, max_iterations=12, verbose=True)
    crf.fit(X, y, X_dev, y_dev)
    (trainer,) = made
    events = [name for name, _ in trainer.calls]
    n = crf.training_log_["iterations"]
    assert 1 <= n <= 12
    assert events == ["start", "featgen_end", "prepared"] + ["iteration"] * n + [
        "optimization_end", "end"]
    infos = [info for name, info in trainer.calls if name == "iteration"]
    assert [info["num"] for info in infos] == list(range(1, n + 1))
    assert crf.training_log_ is trainer.logparser
    assert crf.training_log_.iterations == infos
    for info in infos:
        assert LBFGS_KEYS | HOLDOUT_KEYS <= set(info)
        assert set(info["scores"]) == set(crf.classes_)
        assert info["linesearch_trials"] >= 1 and info["linesearch_step"] > 0
        assert info["time"] >= 0 and info["feature_norm"] > 0 and info["error_norm"] > 0
        assert isinstance(info["item_accuracy"], fractions.Fraction)
        scores = info["scores"].values()
        assert sum(s.model for s in scores) == sum(len(s) for s in y_dev)
        assert sum(s.match for s in scores) == info["item_accuracy"] * sum(len(s) for s in y_dev)
        assert math.isclose(info["avg_f1"], sum(s.f1 or 0.0 for s in scores) / len(crf.classes_))
    # The kept iteration's per-label counts are those of the kept model's predictions.
    kept = crf.training_log_["kept_iteration"]
    record = infos[kept - 1] if kept > 0 else infos[-1]
    gold = [label for s in y_dev for label in s]
    guess = [label for s in crf.predict(X_dev) for label in s]
    for label in crf.classes_:
        match = sum(g == p == label for g, p in zip(gold, guess))
        model = guess.count(label)
        ref = gold.count(label)
        score = record["scores"][label]
        assert (score.match, score.model, score.ref) == (match, model, ref)
        if model == ref == 0:
            assert score == LabelScore(0, 0, 0, None, None, None)
        else:
            assert score.precision == (match / model if model else 0.0)
            assert score.recall == (match / ref if ref else 0.0)
    sequences_right = sum(p == g for p, g in zip(crf.predict(X_dev), y_dev))
    assert record["instance_accuracy"] == fractions.Fraction(sequences_right, len(y_dev))


@pytest.mark.parametrize("algorithm", ["lbfgs", "ap"])
def test_feature_norm_is_the_norm_of_the_weights(chunks, algorithm):
    X, y, _, _ = chunks
    crf = septa.CRF(algorithm, max_iterations=8).fit(X, y)
    weights = list(crf.state_features_.values()) + list(crf.transition_features_.values())
    norm = math.sqrt(sum(w * w for w in weights))
    assert math.isclose(crf.training_log_.last_iteration["feature_norm"], norm, rel_tol=1e-9)
    assert ("error_norm" in crf.training_log_.last_iteration) == (algorithm == "lbfgs")


def test_hooks_follow_verbose_and_message_gets_every_piece(chunks, capsys):
    X, y, _, _ = chunks
    crf, made = run_recorded(max_iterations=3)  # verbose=False: python-crfsuite calls no hook
    crf.fit(X, y)
    assert made[0].calls == []
    assert len(crf.training_log_.iterations) == crf.training_log_["iterations"] == 3

    pieces = []

    class Messages(Trainer):
        def message(self, message):
            pieces.append(message)

    crf = septa.CRF(max_iterations=3, trainer_cls=Messages, verbose=True).fit(X, y)
    log = crf.training_log_
    assert pieces == log.log and len(pieces) == 3 + 3 + 2
    assert [event for event, _, _ in log.events][-2:] == ["optimization_end", "end"]
    assert log.last_log == pieces[-1] and "bytes" in log.last_log
    assert log.featgen_num_features > 0 and log.training_seconds >= 0
    assert capsys.readouterr().err == ""  # message() overridden: the hooks never ran


def test_default_trainer_prints_a_line_per_iteration_and_the_label_table(chunks, capsys):
    X, y, X_dev, y_dev = chunks
    crf = septa.CRF(max_iterations=4, verbose=True).fit(X, y, X_dev, y_dev)
    err = capsys.readouterr().err
    assert err.count("lbfgs    iter") == 4
    assert "Precision" in err and all(label in err for label in crf.classes_)
    assert "septa: model" not in err  # start/prepared/end are silent in the default trainer
    assert septa.CRF().get_params()["trainer_cls"] is None
    assert issubclass(LinePerIterationTrainer, Trainer)


def test_a_hook_that_raises_stops_training(chunks):
    X, y, _, _ = chunks

    class Stop(Trainer):
        def on_iteration(self, log, info):
            if info["num"] == 2:
                raise RuntimeError("enough")

    crf = septa.CRF(max_iterations=50, trainer_cls=Stop, verbose=True)
    with pytest.raises(RuntimeError, match="enough"):
        crf.fit(X, y)
    assert crf.training_log_["iterations"] <= 2


def test_trainer_cls_is_a_parameter_and_checked(chunks):
    from sklearn.base import clone
    X, y, _, _ = chunks
    crf = septa.CRF(trainer_cls=Recorder)
    assert crf.get_params()["trainer_cls"] is Recorder
    assert clone(crf).trainer_cls is Recorder
    assert crf.set_params(trainer_cls=LinePerIterationTrainer).trainer_cls is LinePerIterationTrainer
    assert pickle.loads(pickle.dumps(crf)).trainer_cls is LinePerIterationTrainer
    for wrong in (object, Recorder(), "LinePerIterationTrainer"):
        with pytest.raises(TypeError, match="trainer_cls"):
            septa.CRF(trainer_cls=wrong).fit(X[:3], y[:3])

    class NoInit(Trainer):
        def __init__(self, **kwargs):
            pass

    with pytest.raises(TypeError, match="logparser"):
        septa.CRF(trainer_cls=NoInit).fit(X[:3], y[:3])
    # The log pickles with its parser attributes.
    fitted = septa.CRF(max_iterations=3).fit(X, y)
    copy = pickle.loads(pickle.dumps(fitted.training_log_))
    assert isinstance(copy, TrainingLog) and copy.keys() == fitted.training_log_.keys()
    assert copy["stop_reason"] == fitted.training_log_["stop_reason"]
    assert copy.iterations == fitted.training_log_.iterations and copy.log == fitted.training_log_.log


def test_prepare_error_before_any_iteration():
    calls = []

    class Errors(Trainer):
        def on_prepare_error(self, log):
            calls.append(log)

    with pytest.raises(ValueError):
        septa.CRF(trainer_cls=Errors, verbose=True).fit([[{"a": 1.0}]], [[""]])
    assert len(calls) == 1 and "failed" in calls[0]


def test_tagger_info_matches_the_estimator(chunks):
    X, y, _, _ = chunks
    crf = septa.CRF(c1=0.5, c2=0.01, max_iterations=30).fit(X, y)
    info = crf.tagger_.info()
    assert info.labels == {label: i for i, label in enumerate(crf.classes_)}
    assert info.attributes == {a: i for i, a in enumerate(crf.attributes_)}
    assert info.transitions == crf.transition_features_
    assert info.state_features == crf.state_features_
    assert all(w != 0 for w in info.state_features.values())
    header = info.header
    assert header["magic"] == "SEPTACRF" and header["type"] == "crf1d"
    assert header["version"] >= 3 and header["algorithm"] == "lbfgs"
    assert header["size"] == crf.size_ == len(crf._loaded_model().to_bytes())
    assert header["num_labels"] == len(crf.classes_)
    assert header["num_attrs"] == crf.num_attributes_
    assert header["num_features"] == len(info.state_features) + len(info.transitions)
    assert info.conditioned_transitions == {}
