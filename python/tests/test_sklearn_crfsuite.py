"""sklearn-crfsuite code running unchanged apart from the import (issue 16): its attribute
naming, fitted attributes, python-crfsuite's tagger, CRFsuite's parameters, and scikit-learn's
model selection (clone, GridSearchCV, cross_val_score, pickling)."""

import itertools
import math
import pickle

import pytest

import septa
from conftest import generate

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.metrics import make_scorer  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402


def word2features(sent, i):
    """The feature function of sklearn-crfsuite's tutorial, on [word, POS] tokens."""
    word, postag = sent[i]
    features = {
        "bias": 1.0,
        "word.lower()": word.lower(),
        "word[-3:]": word[-3:],
        "word.isupper()": word.isupper(),
        "word.istitle()": word.istitle(),
        "postag": postag,
    }
    if i > 0:
        features.update({"-1:word.lower()": sent[i - 1][0].lower(), "-1:postag": sent[i - 1][1]})
    else:
        features["BOS"] = True
    if i < len(sent) - 1:
        features.update({"+1:word.lower()": sent[i + 1][0].lower(), "+1:postag": sent[i + 1][1]})
    else:
        features["EOS"] = True
    return features


def sent2features(sent):
    return [word2features(sent, i) for i in range(len(sent))]


@pytest.fixture(scope="module")
def tutorial():
    sentences, labels = generate(120, seed=5)
    test_sentences, test_labels = generate(30, seed=6)
    return ([sent2features(s) for s in sentences], labels,
            [sent2features(s) for s in test_sentences], test_labels)


@pytest.fixture(scope="module")
def crf(tutorial):
    X, y, _, _ = tutorial
    return septa.CRF(algorithm="lbfgs", c1=0.1, c2=0.1, max_iterations=50,
                     all_possible_transitions=True).fit(X, y)


def test_fitted_attributes_are_none_before_fit():
    crf = septa.CRF()
    for name in ("classes_", "state_features_", "transition_features_", "attributes_",
                 "num_attributes_", "size_", "tagger_"):
        assert getattr(crf, name) is None, name


def test_attribute_names_as_python_crfsuite(crf):
    assert "word.lower():dog" in crf.attributes_
    assert crf.num_attributes_ == len(crf.attributes_)
    assert any(attribute == "postag:DT" for attribute, _ in crf.state_features_)
    assert isinstance(crf.size_, int) and crf.size_ > 1000


def test_l1_zero_weights_are_not_listed(tutorial):
    X, y, _, _ = tutorial
    sparse = septa.CRF(c1=2.0, c2=0.0, max_iterations=50).fit(X, y)
    assert all(w != 0.0 for w in sparse.state_features_.values())
    assert all(w != 0.0 for w in sparse.transition_features_.values())
    # The model does hold zero-weight slots: the listing is shorter than the model.
    assert len(sparse.state_features_) < len(sparse._model.state_features())


def test_tagger_probability_marginal_and_tag(crf, tutorial):
    _, _, X_test, _ = tutorial
    tagger = crf.tagger_
    xseq = X_test[0][:3]
    best = tagger.tag(xseq)
    assert best == crf.predict_single(xseq)
    labels = tagger.labels()
    # Brute force: probabilities of all L^T labellings sum to 1; Viterbi's is the largest.
    total = 0.0
    best_p = tagger.probability(best)
    for path in itertools.product(labels, repeat=len(xseq)):
        p = tagger.probability(list(path))
        assert p <= best_p + 1e-12
        total += p
    assert math.isclose(total, 1.0, rel_tol=1e-9)
    marginals = crf.predict_marginals_single(xseq)
    for t in range(len(xseq)):
        for label in labels:
            assert math.isclose(tagger.marginal(label, t), marginals[t][label], rel_tol=1e-12)
    # The node marginal equals the summed probability of the paths through that node.
    through = sum(tagger.probability(list(path))
                  for path in itertools.product(labels, repeat=len(xseq)) if path[1] == best[1])
    assert math.isclose(tagger.marginal(best[1], 1), through, rel_tol=1e-9)
    with pytest.raises(ValueError, match="not a label"):
        tagger.probability(["no-such-label"] * len(xseq))
    # tagger_.info(): python-crfsuite's header fields, consistent with the estimator's.
    info = tagger.info()
    assert int(info.header["size"]) == crf.size_
    assert int(info.header["num_attrs"]) == crf.num_attributes_ == len(info.attributes)
    assert int(info.header["num_labels"]) == len(crf.classes_) == len(info.labels)
    assert int(info.header["num_features"]) == len(info.state_features) + len(info.transitions)
    assert info.state_features == crf.state_features_


def test_model_filename_loads_an_existing_model(tmp_path, crf, tutorial):
    _, _, X_test, _ = tutorial
    path = tmp_path / "model.crfsuite"
    crf.save(path)
    loaded = septa.CRF(model_filename=str(path))
    assert loaded.predict(X_test) == crf.predict(X_test)
    assert loaded.classes_ == crf.classes_


def test_min_freq_has_crfsuite_meaning():
    # Attribute "rare" occurs once, "twice" twice: CRFsuite's min_freq keeps features seen
    # MORE than min_freq times, and 0 keeps all.
    X = [[{"rare": 1.0, "common": 1.0}], [{"twice": 1.0, "common": 1.0}],
         [{"twice": 1.0, "common": 1.0}], [{"other": 1.0}]]
    y = [["A"], ["A"], ["A"], ["B"]]
    names = lambda crf: {attribute for attribute, _ in crf.state_features_} - {"other"}
    all_kept = septa.CRF(min_freq=0, c2=0.01, max_iterations=20).fit(X, y)
    assert names(all_kept) == {"rare", "twice", "common"}
    above_one = septa.CRF(min_freq=1, c2=0.01, max_iterations=20).fit(X, y)
    assert names(above_one) == {"twice", "common"}
    above_two = septa.CRF(min_freq=2, c2=0.01, max_iterations=20).fit(X, y)
    assert names(above_two) == {"common"}
    with pytest.raises(ValueError, match="min_freq"):
        septa.CRF(min_freq=-1).fit(X, y)


def test_bytes_and_non_string_labels():
    X = [[{"w": b"a"}, {"w": b"b"}]] * 5
    crf = septa.CRF(c2=0.01, max_iterations=30).fit(X, [[b"X", 1]] * 5)
    assert crf.predict(X[:1]) == [["X", "1"]]


def test_crfsuite_lbfgs_parameters(tutorial):
    X, y, _, _ = tutorial
    crf = septa.CRF(num_memories=3, linesearch="Backtracking", max_linesearch=10, epsilon=1e-4,
                    period=5, delta=1e-4, max_iterations=20).fit(X[:40], y[:40])
    assert crf.training_log_["iterations"] <= 20
    with pytest.raises(ValueError, match="linesearch"):
        septa.CRF(linesearch="Sideways").fit(X[:5], y[:5])
    with pytest.raises(TypeError, match="trainer_cls"):
        septa.CRF(trainer_cls=object).fit(X[:5], y[:5])


def test_scikit_learn_model_selection(tutorial):
    X, y, X_test, y_test = tutorial
    estimator = septa.CRF(algorithm="lbfgs", max_iterations=20, all_possible_transitions=True)
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params()
    labels = ["B-NP", "I-NP", "B-VP", "I-VP", "B-PP"]
    f1 = make_scorer(septa.metrics.flat_f1_score, average="weighted", labels=labels)
    search = GridSearchCV(estimator, {"c2": [0.01, 1.0]}, scoring=f1, cv=2)
    search.fit(X[:60], y[:60])
    assert search.best_params_["c2"] in (0.01, 1.0)
    assert search.best_score_ > 0.8
    best = pickle.loads(pickle.dumps(search.best_estimator_))
    assert best.predict(X_test) == search.best_estimator_.predict(X_test)
    scores = cross_val_score(septa.CRF(c2=0.1, max_iterations=20), X[:60], y[:60], cv=2,
                             scoring=septa.scorers.flat_accuracy)
    assert len(scores) == 2 and all(s > 0.8 for s in scores)
    sequence_scores = cross_val_score(septa.CRF(c2=0.1, max_iterations=20), X[:60], y[:60],
                                      cv=2, scoring=septa.scorers.sequence_accuracy)
    assert all(0.0 <= s <= 1.0 for s in sequence_scores)


def test_c2_auto_with_dev_data(tutorial):
    X, y, X_test, y_test = tutorial
    crf = septa.CRF(c2="auto", max_iterations=50).fit(X[:60], y[:60], X_dev=X_test, y_dev=y_test)
    assert crf.training_log_["chosen_c2"] in (10, 3, 1, 0.3, 0.1, 0.03, 0.01)
    assert crf.get_params()["c2"] == "auto"
    with pytest.raises(ValueError, match="needs held-out data"):
        septa.CRF(c2="auto").fit(X[:10], y[:10])


# A sequence in the spirit of sklearn-crfsuite's own test fixture (written for septa): float and
# bool values, a bytes value, non-ASCII names and an item without features.
WEATHER_X = [
    {"umbrella": 1.0, "sun": 0.2}, {"umbrella": 0.9}, {"umbrella": 1.0, "wind": 0.3},
    {"sun": 0.7, "wind": 0.4}, {"sun": 1.0}, {"sun": 0.9, "warm": True},
    {"umbrella": 0.8, "cloud": 0.5}, {}, {"sun": 1.0},
    {"облако": "серое".encode("utf8"), "umbrella": 1.0},
]
WEATHER_Y = ["rain", "rain", "rain", "sun", "sun", "sun", "rain", "rain", "sun", "rain"]
CRFSUITE_ALGORITHMS = ["lbfgs", "l2sgd", "ap", "pa", "arow"]


@pytest.mark.parametrize("algorithm", CRFSUITE_ALGORITHMS)
def test_crfsuite_algorithms_as_sklearn_crfsuite_tests_use_them(algorithm, capsys):
    crf = septa.CRF(algorithm)  # positional algorithm, as sklearn-crfsuite allows
    with pytest.raises(Exception):
        crf.predict([WEATHER_X])  # not fitted
    crf.fit([WEATHER_X], [WEATHER_Y])
    # Every algorithm fits this one sequence; for ap only because all 100 epochs run (CRFsuite's
    # epsilon 0): stopped at its first error-free epoch (4), the average still scores 0.8.
    expected = 1.0
    assert crf.score([WEATHER_X], [WEATHER_Y]) == expected
    if algorithm == "ap":
        assert crf.training_log_["iterations"] == 100
        early = septa.CRF(algorithm, epsilon=1e-9).fit([WEATHER_X], [WEATHER_Y])
        assert early.training_log_["stop_reason"] == "training error below epsilon"
        assert early.training_log_["iterations"] < 100
    marginals = crf.predict_marginals([WEATHER_X])[0]
    assert len(marginals) == len(WEATHER_Y)
    for row in marginals:
        assert set(row) == set(crf.tagger.labels()) == set(crf.tagger_.labels())
        assert abs(sum(row.values()) - 1.0) < 1e-6
    copy = pickle.loads(pickle.dumps(crf, protocol=pickle.HIGHEST_PROTOCOL))
    assert copy.algorithm == algorithm
    assert copy.predict([WEATHER_X]) == crf.predict([WEATHER_X])
    # verbose, with and without held-out data.
    for dev in (None, [WEATHER_X]):
        verbose = septa.CRF(algorithm, verbose=True).fit(
            [WEATHER_X, WEATHER_X], [WEATHER_Y, WEATHER_Y], X_dev=dev,
            y_dev=None if dev is None else [WEATHER_Y])
        assert verbose.score([WEATHER_X], [WEATHER_Y]) >= expected
    assert algorithm in capsys.readouterr().err
    with pytest.raises(ValueError):
        septa.CRF().fit([WEATHER_X] * 4, [WEATHER_Y] * 4, [WEATHER_X] * 4)  # X_dev alone


def test_training_log_has_python_crfsuite_iterations():
    crf = septa.CRF(max_iterations=15).fit([WEATHER_X] * 3, [WEATHER_Y] * 3,
                                           X_dev=[WEATHER_X], y_dev=[WEATHER_Y])
    log = crf.training_log_
    assert log["iterations"] == len(log.iterations) <= 15
    assert [record["num"] for record in log.iterations] == list(range(1, len(log.iterations) + 1))
    assert log.last_iteration is log.iterations[-1]
    assert all(record["time"] >= 0 and record["loss"] > 0 for record in log.iterations)
    assert log.last_iteration["item_accuracy_float"] == 1.0
    assert log.last_iteration["chunk_f1"] is None  # weather labels have no chunks
    assert log.last_iteration["avg_f1"] == 1.0  # CRFsuite's macro F1 over the labels
    assert pickle.loads(pickle.dumps(crf)).training_log_.iterations == log.iterations


def test_tutorial_search_reports_and_inspection(tutorial):
    """What sklearn-crfsuite's CoNLL 2002 tutorial does after fitting."""
    scipy_stats = pytest.importorskip("scipy.stats")
    from collections import Counter
    from sklearn.model_selection import RandomizedSearchCV
    X, y, X_test, y_test = tutorial
    crf = septa.CRF(algorithm="lbfgs", c1=0.1, c2=0.1, max_iterations=30,
                    all_possible_transitions=True).fit(X, y)
    labels = list(crf.classes_)
    labels.remove("B-NP")  # the tutorial drops 'O'; a copy, the model keeps its labels
    assert "B-NP" in crf.classes_
    y_pred = crf.predict(X_test)
    assert septa.metrics.flat_f1_score(y_test, y_pred, average="weighted", labels=labels) > 0.8
    sorted_labels = sorted(labels, key=lambda name: (name[1:], name[0]))
    report = septa.metrics.flat_classification_report(y_test, y_pred, labels=sorted_labels,
                                                      digits=3)
    assert report.index("B-PP") < report.index("B-VP") and "weighted avg" in report
    top = Counter(crf.transition_features_).most_common(3)
    assert len(top) == 3 and all(len(pair) == 2 for pair, _ in top)
    assert top[0][0] in {("B-NP", "I-NP"), ("I-NP", "I-NP")}
    worst = Counter(crf.state_features_).most_common()[-3:]
    assert all(weight < 0 for _, weight in worst)
    # Randomized search over c1 and c2 with processes (the estimator is pickled to them).
    search = RandomizedSearchCV(
        septa.CRF(algorithm="lbfgs", max_iterations=20, all_possible_transitions=True),
        {"c1": scipy_stats.expon(scale=0.5), "c2": scipy_stats.expon(scale=0.05)},
        cv=2, n_jobs=2, n_iter=3, random_state=0,
        scoring=make_scorer(septa.metrics.flat_f1_score, average="weighted", labels=labels))
    search.fit(X[:60], y[:60])
    assert len(search.cv_results_["mean_test_score"]) == 3
    assert set(search.best_params_) == {"c1", "c2"}
    assert search.best_estimator_.size_ > 1000
    scores = cross_val_score(septa.CRF(max_iterations=20), [WEATHER_X] * 10, [WEATHER_Y] * 10,
                             cv=5, n_jobs=2)
    assert scores.mean() == 1.0


def test_l2sgd_calibration_parameters_reach_training():
    crf = septa.CRF(algorithm="l2sgd", c2=0.5, max_iterations=4, calibration_eta=0.01,
                    calibration_rate=3, calibration_samples=2, calibration_candidates=5,
                    calibration_max_trials=3).fit([WEATHER_X] * 3, [WEATHER_Y] * 3)
    phases = [record["phase"] for record in crf.training_log_.iterations]
    assert phases == ["calibrate eta=0.01", "calibrate eta=0.03"] + ["l2sgd"] * 4
    assert any(crf.training_log_["chosen_eta"] == pytest.approx(eta) for eta in (0.01, 0.03))
    assert crf.get_params()["calibration_rate"] == 3
    with pytest.raises(ValueError, match="calibration_rate"):
        septa.CRF(algorithm="l2sgd", calibration_rate=1).fit([WEATHER_X], [WEATHER_Y])
