"""septa.CRF: training, prediction, marginals, persistence, parameters, CLI equivalence."""

import math
import os
import pickle

import pytest

import septa
from conftest import (ALGORITHMS, fit_or_skip, read_tagged, write_attributes, write_columns)

TEMPLATE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "chunking.template")


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _ = data["train"]
    return septa.CRF(algorithm="lbfgs", c2=0.1, max_iterations=100).fit(X, y)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_fit_predict_round_trip(data, algorithm):
    X, y, _ = data["train"]
    X_test, y_test, _ = data["test"]
    crf = fit_or_skip(septa.CRF(algorithm=algorithm, c2=0.1, max_iterations=100), X, y)
    y_pred = crf.predict(X_test)
    assert [len(s) for s in y_pred] == [len(s) for s in y_test]
    assert set(crf.classes_) == {label for s in y for label in s}
    assert all(label in crf.classes_ for s in y_pred for label in s)
    # The toy grammar is easy: every algorithm must learn it well.
    assert crf.score(X_test, y_test) > 0.95
    assert septa.metrics.chunk_f1_score(y_test, y_pred) > 0.9
    assert crf.predict_single(X_test[0]) == y_pred[0]
    assert crf.algorithm_ == algorithm
    assert crf.training_log_["iterations"] > 0


def test_predict_before_fit_raises():
    with pytest.raises(AttributeError, match="not fitted"):
        septa.CRF().predict([[{"a": 1.0}]])


def test_marginals_sum_to_one(data, fitted):
    X_test, _, _ = data["test"]
    marginals = fitted.predict_marginals(X_test[:20])
    predictions = fitted.predict(X_test[:20])
    agree = total = 0
    for sequence, predicted in zip(marginals, predictions):
        assert len(sequence) == len(predicted)
        for token, label in zip(sequence, predicted):
            assert set(token) == set(fitted.classes_)
            assert math.isclose(sum(token.values()), 1.0, abs_tol=1e-9)
            assert all(0.0 <= p <= 1.0 for p in token.values())
            agree += max(token, key=token.get) == label
            total += 1
    assert agree / total > 0.95  # the per-token argmax mostly matches Viterbi here
    assert fitted.predict_marginals_single(X_test[0]) == marginals[0]


def test_inspection_attributes(fitted):
    states = fitted.state_features_
    transitions = fitted.transition_features_
    assert states and transitions
    assert all(isinstance(k, tuple) and len(k) == 2 for k in states)
    assert {label for _, label in states} <= set(fitted.classes_)
    # A determiner starts a noun phrase: that feature must weigh towards B-NP.
    assert states[("pos:DT", "B-NP")] > 0
    assert states.get(("pos:DT", "B-NP"), 0) > states.get(("pos:DT", "B-VP"), 0)
    # I-NP follows B-NP, never O.
    assert transitions[("B-NP", "I-NP")] > transitions.get(("O", "I-NP"), -1e9)
    # The dump lists every label under its count and every non-zero transition with its weight.
    dump = fitted.dump().splitlines()
    assert dump[0] == "ALGORITHM lbfgs"
    start = dump.index("LABELS %d" % len(fitted.classes_))
    assert [line.strip() for line in dump[start + 1:start + 1 + len(fitted.classes_)]] == \
        list(fitted.classes_)
    assert "  %10.6f  B-NP -> I-NP" % transitions[("B-NP", "I-NP")] in dump


def test_pickle_round_trip(data, fitted):
    X_test, _, _ = data["test"]
    clone = pickle.loads(pickle.dumps(fitted))
    assert clone.get_params() == fitted.get_params()
    assert clone.predict(X_test) == fitted.predict(X_test)
    assert clone.predict_marginals(X_test[:5]) == fitted.predict_marginals(X_test[:5])
    assert clone.state_features_ == fitted.state_features_
    unfitted = pickle.loads(pickle.dumps(septa.CRF(c2=0.5)))
    assert unfitted.c2 == 0.5
    assert unfitted.classes_ is None


def test_save_load_round_trip(tmp_path, data, fitted):
    X_test, _, _ = data["test"]
    path = tmp_path / "model.septa"
    fitted.save(path)
    loaded = septa.CRF.load(path)
    assert loaded.predict(X_test) == fitted.predict(X_test)
    assert loaded.transition_features_ == fitted.transition_features_
    assert loaded.classes_ == fitted.classes_
    loaded.save(tmp_path / "again.septa")
    assert (tmp_path / "again.septa").read_bytes() == path.read_bytes()


def test_model_filename_written_by_fit(tmp_path, data):
    X, y, _ = data["train"]
    path = tmp_path / "from_fit.septa"
    crf = septa.CRF(c2=0.1, max_iterations=30, model_filename=str(path)).fit(X[:50], y[:50])
    assert path.exists()
    assert septa.CRF.load(path).predict(X[:5]) == crf.predict(X[:5])


def test_load_errors(tmp_path):
    with pytest.raises(OSError, match="missing.septa"):
        septa.CRF.load(tmp_path / "missing.septa")
    bad = tmp_path / "bad.septa"
    bad.write_bytes(b"this is not a septa model\n" * 10)
    with pytest.raises(ValueError) as info:
        septa.CRF.load(bad)
    assert isinstance(info.value, septa.ModelError)
    with pytest.raises(septa.ModelError):
        pickle.loads(pickle.dumps(septa.CRF())).__setstate__({"_model_bytes": b"garbage"})


def test_get_set_params():
    crf = septa.CRF(algorithm="separate", c1=0.0, c2=0.5, num_threads=2, epochs=3)
    params = crf.get_params()
    assert params["algorithm"] == "separate"
    assert params["c2"] == 0.5
    assert params["num_threads"] == 2
    assert params["epochs"] == 3
    # Every option of the C++ table is a parameter (with '-' -> '_', threads -> num_threads).
    for key in ("max_iterations", "min_freq", "all_possible_states",
                "all_possible_transitions", "period", "delta", "epsilon", "seed", "floor",
                "local_optimizer", "verbose", "model_filename", "template"):
        assert key in params
    assert "threads" not in params
    clone = septa.CRF(**params)  # what sklearn.base.clone does
    assert clone.get_params() == params
    assert crf.set_params(c2=2.0, max_iterations=7) is crf
    assert crf.c2 == 2.0 and crf.max_iterations == 7
    with pytest.raises(ValueError, match="nonsense"):
        crf.set_params(nonsense=1)
    with pytest.raises(TypeError, match="nonsense"):
        septa.CRF(nonsense=1)
    assert "c2" in septa.option_defaults()


def test_option_values_reach_training(data):
    X, y, _ = data["train"]
    short = septa.CRF(c2=0.1, max_iterations=3).fit(X[:100], y[:100])
    assert short.training_log_["iterations"] <= 3
    sparse = septa.CRF(c1=1.0, c2=0.0, max_iterations=100).fit(X[:100], y[:100])
    dense = septa.CRF(c1=0.0, c2=0.01, max_iterations=100).fit(X[:100], y[:100])
    nonzero = lambda crf: sum(1 for w in crf.state_features_.values() if w != 0.0)
    assert nonzero(sparse) < nonzero(dense)


def test_feature_conversion_rules():
    item = septa.item_attributes
    assert item({"w": "dog"}) == [("w:dog", 1.0)]
    assert item({b"w": b"dog", "l": [b"x"]}) == [("w:dog", 1.0), ("l:x", 1.0)]
    assert item({"x": 2.5, "n": 3}) == [("x", 2.5), ("n", 3.0)]
    assert item({"t": True, "f": False}) == [("t", 1.0), ("f", 0.0)]
    assert item(["a", "b"]) == [("a", 1.0), ("b", 1.0)]
    assert item({"prev": {"w": "the", "len": 0.3}}) == [("prev:w:the", 1.0), ("prev:len", 0.3)]
    assert item({"a": {"b": {"c": True}}}) == [("a:b:c", 1.0)]
    assert item({"tags": ["x", "y"]}) == [("tags:x", 1.0), ("tags:y", 1.0)]
    with pytest.raises(ValueError, match="unsupported value"):
        item({"w": None})


def test_nested_and_flat_features_train_the_same_model(data):
    X, y, _ = data["train"]
    flat = [[dict(septa.item_attributes(token)) for token in s] for s in X[:80]]
    a = septa.CRF(c2=0.1, max_iterations=50).fit(X[:80], y[:80])
    b = septa.CRF(c2=0.1, max_iterations=50).fit(flat, y[:80])
    assert a.state_features_ == b.state_features_


def test_dev_data_and_callback(data):
    X, y, _ = data["train"]
    X_dev, y_dev, _ = data["test"]
    seen = []
    crf = septa.CRF(c2=0.1, max_iterations=20).fit(X[:100], y[:100], X_dev=X_dev[:30],
                                                   y_dev=y_dev[:30], callback=seen.append)
    assert seen and seen[-1]["iteration"] >= 1
    assert not math.isnan(seen[-1]["dev_f1"])
    stopped = septa.CRF(c2=0.1, max_iterations=100).fit(
        X[:100], y[:100], callback=lambda info: info["iteration"] < 2)
    assert stopped.training_log_["cancelled"]
    assert stopped.training_log_["iterations"] <= 3
    assert len(stopped.predict(X[:2])) == 2  # the model so far is kept
    with pytest.raises(ValueError, match="X_dev and y_dev"):
        crf.fit(X, y, X_dev=X_dev)


def test_verbose_prints_progress(data, capsys):
    X, y, _ = data["train"]
    septa.CRF(c2=0.1, max_iterations=5, verbose=True).fit(X[:50], y[:50])
    err = capsys.readouterr().err
    assert "iter" in err and "objective" in err


def test_verbose_with_dev_data_ends_with_the_kept_iteration(data, capsys):
    # The progress lines and the closing "kept iteration" line come from the same formatter as
    # septa train's (septa_util); the kept line names what the training log says.
    X, y, _ = data["train"]
    X_dev, y_dev, _ = data["test"]
    crf = septa.CRF(c2=0.001, max_iterations=40, verbose=True).fit(
        X[:50], y[:50], X_dev=X_dev[:30], y_dev=y_dev[:30])
    lines = capsys.readouterr().err.splitlines()
    log = crf.training_log_
    assert log["kept_iteration"] >= 1
    assert lines[-1] == "kept iteration %d: best dev %s %.2f" % (
        log["kept_iteration"], log["kept_metric"], log["kept_score"])
    assert sum(line.startswith("kept iteration") for line in lines) == 1
    progress = [line for line in lines if line.startswith("lbfgs    iter ")]
    assert len(progress) == log["iterations"]
    assert all("  dev acc " in line for line in progress)


# ---- the same models and predictions as the command-line tool ---------------------------------

@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_same_model_as_cli(tmp_path, cli, data, algorithm):
    X, y, _ = data["train"]
    X_test, y_test, _ = data["test"]
    X, y = X[:150], y[:150]
    crf = fit_or_skip(septa.CRF(algorithm=algorithm, c2=0.1, max_iterations=50), X, y)
    train_file, test_file = tmp_path / "train.txt", tmp_path / "test.txt"
    write_attributes(train_file, X, y)
    write_attributes(test_file, X_test, y_test)
    model_file = tmp_path / "cli.septa"
    cli("train", "-q", "--format", "attributes", "-a", algorithm, "--c2", "0.1",
        "--max-iterations", "50", "-m", model_file, train_file)
    cli_model = septa.CRF.load(model_file)
    assert cli_model.state_features_ == crf.state_features_
    assert cli_model.transition_features_ == crf.transition_features_
    python_file = tmp_path / "python.septa"
    crf.save(python_file)
    assert python_file.read_bytes() == model_file.read_bytes()
    tagged = read_tagged(cli("tag", "-m", model_file, test_file).stdout)
    assert tagged == crf.predict(X_test)


def test_template_columns_same_as_cli(tmp_path, cli, data):
    _, y, sentences = data["train"]
    _, y_test, test_sentences = data["test"]
    sentences, y = sentences[:150], y[:150]
    crf = septa.CRF(c2=0.1, max_iterations=50, template=TEMPLATE).fit(sentences, y)
    train_file, test_file = tmp_path / "train.txt", tmp_path / "test.txt"
    write_columns(train_file, sentences, y)
    write_columns(test_file, test_sentences)
    model_file = tmp_path / "cli.septa"
    cli("train", "-q", "-t", TEMPLATE, "--c2", "0.1", "--max-iterations", "50", "-m",
        model_file, train_file)
    # Both run the same compiled library (the extension is the CMake target septa_python), but
    # the CLI trains column files through the sharded (MPI-ready) path, whose gradient sums in
    # file-block order, and the Python API sums in its own block order: the same model up to
    # the last bits of rounding (differences of about 1e-11 here), not byte for byte. The attribute
    # format has one order and is compared byte for byte above.
    cli_model = septa.CRF.load(model_file)
    assert cli_model.attributes_ == crf.attributes_
    assert cli_model.state_features_.keys() == crf.state_features_.keys()
    assert cli_model.transition_features_.keys() == crf.transition_features_.keys()
    for key, weight in crf.state_features_.items():
        assert math.isclose(cli_model.state_features_[key], weight, rel_tol=1e-9, abs_tol=1e-10)
    for key, weight in crf.transition_features_.items():
        assert math.isclose(cli_model.transition_features_[key], weight, rel_tol=1e-9,
                            abs_tol=1e-10)
    y_pred = crf.predict(test_sentences)
    assert read_tagged(cli("tag", "-m", model_file, test_file).stdout) == y_pred
    assert septa.metrics.flat_accuracy_score(y_test, y_pred) > 0.95
    # A loaded column model predicts from columns without being told the template again.
    assert septa.CRF.load(model_file).predict(test_sentences[:10]) == y_pred[:10]


def test_default_template_columns(data):
    _, y, sentences = data["train"]
    crf = septa.CRF(c2=0.1, max_iterations=30, template="default").fit(sentences[:80], y[:80])
    assert any(name.startswith("U") for name, _ in crf.state_features_)
    assert crf.score(sentences[:80], y[:80]) > 0.9


def test_observation_conditioned_bigram_template(tmp_path, data):
    """CRF++ "B01:%x[0,1]" lines: transitions conditioned on the POS of the current token."""
    _, y, sentences = data["train"]
    _, y_test, test_sentences = data["test"]
    template = tmp_path / "cond.template"
    template.write_text("U00:%x[0,0]\nU01:%x[0,1]\nB\nB01:%x[0,1]\n")
    crf = septa.CRF(c2=0.1, max_iterations=50, template=str(template)).fit(sentences[:150], y[:150])
    conditioned = crf.conditioned_transition_features_
    assert conditioned and all(a.startswith("B01:") for a, _, _ in conditioned)
    assert all(b in crf.classes_ and c in crf.classes_ for _, b, c in conditioned)
    y_pred = crf.predict(test_sentences)
    assert septa.metrics.flat_accuracy_score(y_test, y_pred) > 0.95
    for row in crf.predict_marginals_single(test_sentences[0]):
        assert math.isclose(sum(row.values()), 1.0, rel_tol=1e-9)
    copy = pickle.loads(pickle.dumps(crf))
    assert copy.predict(test_sentences[:10]) == y_pred[:10]
    assert copy.conditioned_transition_features_ == conditioned
    # Templates without them: an empty dict, and None before fit.
    plain = septa.CRF(max_iterations=5, template="default").fit(sentences[:20], y[:20])
    assert plain.conditioned_transition_features_ == {}
    assert septa.CRF().conditioned_transition_features_ is None
    with pytest.raises(ValueError, match="observation-conditioned"):
        septa.CRF(algorithm="separate", template=str(template)).fit(sentences[:20], y[:20])
