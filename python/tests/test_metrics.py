"""septa.metrics: conlleval figures identical to the CLI's eval; sklearn-crfsuite flat metrics."""

import random

import pytest

import septa
from septa import metrics

Y_TRUE = [["B-NP", "I-NP", "B-VP", "B-NP", "O"], ["B-PP", "B-NP", "I-NP"]]
Y_PRED = [["B-NP", "I-NP", "B-VP", "I-NP", "O"], ["B-PP", "B-NP", "B-NP"]]


def corrupt(y, seed):
    rng = random.Random(seed)
    labels = sorted({label for s in y for label in s})
    return [[rng.choice(labels) if rng.random() < 0.15 else label for label in s] for s in y]


def test_chunk_figures_by_hand():
    result = metrics.conlleval(Y_TRUE, Y_PRED)
    # Gold chunks: NP, VP, NP | PP, NP = 5. Guessed: NP, VP, NP (an I-NP after B-VP starts a
    # chunk, as conlleval reads IOB1) | PP, NP, NP = 6. Correct: NP(0-1), VP, NP(3), PP = 4.
    assert result["overall"]["gold"] == 5
    assert result["overall"]["guessed"] == 6
    assert result["overall"]["correct"] == 4
    p, r = 100 * 4 / 6, 100 * 4 / 5
    assert result["overall"]["precision"] == pytest.approx(p)
    assert result["overall"]["recall"] == pytest.approx(r)
    assert result["overall"]["f1"] == pytest.approx(2 * p * r / (p + r))
    assert result["by_type"]["NP"]["gold"] == 3 and result["by_type"]["NP"]["correct"] == 2
    assert result["tokens"] == 8 and result["correct_tokens"] == 6
    assert metrics.chunk_precision_score(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)
    assert metrics.chunk_recall_score(Y_TRUE, Y_PRED) == pytest.approx(4 / 5)
    assert metrics.chunk_f1_score(Y_TRUE, Y_PRED, chunk_type="VP") == pytest.approx(1.0)
    assert metrics.chunk_f1_score(Y_TRUE, Y_PRED, chunk_type="ADJP") == 0.0


def test_iobes_scheme():
    gold = [["S-PER", "O", "B-LOC", "E-LOC"]]
    assert metrics.chunk_f1_score(gold, gold, scheme="iobes") == pytest.approx(1.0)
    assert metrics.conlleval(gold, gold, scheme="iobes")["overall"]["gold"] == 2
    with pytest.raises(ValueError, match="scheme"):
        metrics.conlleval(gold, gold, scheme="bilou")


def test_metrics_input_errors():
    with pytest.raises(ValueError, match="differ in length"):
        metrics.conlleval(Y_TRUE, Y_PRED[:1])
    with pytest.raises(ValueError, match=r"sequence 1: y_true has 3 labels but y_pred has 2"):
        metrics.flat_accuracy_score(Y_TRUE, [Y_PRED[0], ["O", "O"]])
    with pytest.raises(ValueError, match=r"y_pred\[0\]\[0\]: labels must be str"):
        metrics.conlleval([["O"]], [[0]])


def test_same_as_cli_eval(tmp_path, cli, data):
    _, y_test, sentences = data["test"]
    y_pred = corrupt(y_test, seed=3)
    path = tmp_path / "predictions.txt"
    with open(path, "w") as out:
        for sentence, gold, guess in zip(sentences, y_test, y_pred):
            for token, g, p in zip(sentence, gold, guess):
                out.write(" ".join(token + [g, p]) + "\n")
            out.write("\n")
    cli_report = cli("eval", path).stdout
    assert metrics.conlleval_report(y_test, y_pred) == cli_report
    result = metrics.conlleval(y_test, y_pred)
    overall = [line for line in cli_report.splitlines() if line.startswith("accuracy")][0]
    assert "FB1: %6.2f" % result["overall"]["f1"] in overall
    assert 50 < result["overall"]["f1"] < 100  # the corruption changed something


def test_same_as_cli_eval_on_model_predictions(tmp_path, cli, data):
    X, y, _ = data["train"]
    X_test, y_test, sentences = data["test"]
    crf = septa.CRF(c2=0.1, max_iterations=10).fit(X[:60], y[:60])
    y_pred = crf.predict(X_test)
    path = tmp_path / "predictions.txt"
    path.write_text("".join(
        "".join("%s %s %s\n" % (tok[0], g, p) for tok, g, p in zip(s, gs, ps)) + "\n"
        for s, gs, ps in zip(sentences, y_test, y_pred)))
    assert metrics.chunk_classification_report(y_test, y_pred) == cli("eval", path).stdout


def test_flat_metrics():
    assert metrics.flat_accuracy_score(Y_TRUE, Y_PRED) == pytest.approx(6 / 8)
    assert metrics.sequence_accuracy_score(Y_TRUE, Y_PRED) == 0.0
    assert metrics.sequence_accuracy_score(Y_TRUE, Y_TRUE) == 1.0
    # I-NP: gold 2 (tokens 1 and 7), predicted 2 (tokens 1 and 3), correct 1.
    p, r, f, s = metrics.precision_recall_fscore_support(Y_TRUE, Y_PRED, labels=["I-NP"])
    assert p == [0.5] and r == [0.5] and f == [0.5] and s == [2]
    # B-NP: gold 3, predicted 3 (0, 5, 7), correct 2.
    assert metrics.flat_precision_score(Y_TRUE, Y_PRED, labels=["B-NP"], average="macro") == \
        pytest.approx(2 / 3)
    assert metrics.flat_recall_score(Y_TRUE, Y_PRED, average="micro") == pytest.approx(6 / 8)
    weighted = metrics.flat_f1_score(Y_TRUE, Y_PRED, average="weighted",
                                     labels=["B-NP", "I-NP"])
    assert weighted == pytest.approx((3 * 2 / 3 + 2 * 0.5) / 5)
    assert metrics.flat_fbeta_score(Y_TRUE, Y_PRED, beta=2.0, labels=["I-NP"],
                                    average="macro") == pytest.approx(0.5)
    with pytest.raises(ValueError, match="multiclass"):
        metrics.flat_f1_score(Y_TRUE, Y_PRED)
    binary_true, binary_pred = [["A", "B", "A"]], [["A", "A", "A"]]
    assert metrics.flat_precision_score(binary_true, binary_pred, pos_label="A") == \
        pytest.approx(2 / 3)
    report = metrics.flat_classification_report(Y_TRUE, Y_PRED, digits=3)
    assert "I-NP" in report and "0.500" in report and "weighted avg" in report
    as_dict = metrics.flat_classification_report(Y_TRUE, Y_PRED, output_dict=True)
    assert as_dict["B-VP"]["f1-score"] == 1.0 and as_dict["B-VP"]["support"] == 1


def test_flat_metrics_take_any_hashable_labels_and_sklearn_keywords():
    # Integer labels, as sklearn-crfsuite's metrics accept.
    assert metrics.sequence_accuracy_score([[1, 2], [3], [4]], [[1, 2], [4], [4]]) == \
        pytest.approx(2 / 3)
    assert metrics.sequence_accuracy_score([], []) == 0
    assert metrics.flat_accuracy_score([[1, 2], [3]], [[1, 0], [3]]) == pytest.approx(2 / 3)
    assert metrics.flat_f1_score([[1, 2], [3]], [[1, 0], [3]], average="micro") == \
        pytest.approx(2 / 3)
    # Keywords sklearn takes and septa's own code does not: passed through to sklearn.
    pytest.importorskip("sklearn")
    assert metrics.flat_precision_score(Y_TRUE, Y_PRED, average="macro", zero_division=0,
                                        sample_weight=[1] * 8) >= 0.0
    report = metrics.flat_classification_report(Y_TRUE, Y_PRED, labels=["B-NP", "I-NP"],
                                                target_names=["begin", "inside"])
    assert "begin" in report and "inside" in report
    assert septa.utils.flatten([[1, 2], [3]]) == [1, 2, 3]


def test_own_flat_metrics_equal_sklearn():
    """Without scikit-learn septa answers with its own code: the same figures."""
    sk = pytest.importorskip("sklearn.metrics")
    y_true = corrupt(Y_TRUE * 5, seed=1)
    y_pred = corrupt(y_true, seed=2)
    flat_true, flat_pred = metrics._flatten(y_true, y_pred)
    labels = sorted(set(flat_true))
    for average in ("micro", "macro", "weighted"):
        for chosen in (None, labels[:3]):
            kwargs = {"average": average, "labels": chosen}
            for index, ours_name, theirs in ((0, "p", sk.precision_score),
                                             (1, "r", sk.recall_score), (2, "f", sk.f1_score)):
                ours = metrics._own_score(y_true, y_pred, 1.0, index, ours_name, dict(kwargs))
                assert ours == pytest.approx(theirs(flat_true, flat_pred, zero_division=0,
                                                    **kwargs)), (average, chosen, ours_name)
    with pytest.raises(TypeError, match="need scikit-learn"):
        metrics._own_score(y_true, y_pred, 1.0, 0, "flat_precision_score",
                           {"sample_weight": None})
