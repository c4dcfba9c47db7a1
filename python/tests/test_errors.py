"""Every kind of bad input raises the right Python exception, with a message that helps."""

import pytest

import septa

X = [[{"w": "the"}, {"w": "dog"}], [{"w": "runs"}]]
Y = [["B-NP", "I-NP"], ["B-VP"]]


def fit(X, y, **params):
    params.setdefault("max_iterations", 5)
    return septa.CRF(**params).fit(X, y)


def test_ragged_x_and_y():
    with pytest.raises(ValueError, match=r"X and y differ in length: 2 sequences vs 1"):
        fit(X, Y[:1])


def test_sequence_with_more_labels_than_items_names_the_index():
    with pytest.raises(ValueError, match=r"sequence 1: X\[1\] has 1 items but y\[1\] has 2"):
        fit(X, [Y[0], ["B-VP", "O"]])


@pytest.mark.parametrize("label", [None, [1], {"B": 1}])
def test_non_string_labels_name_sequence_and_position(label):
    with pytest.raises(ValueError, match=r"y\[0\]\[1\]: labels must be str"):
        fit(X, [["B-NP", label], ["B-VP"]])


def test_labels_given_as_one_string():
    with pytest.raises(ValueError, match=r"y\[1\] must be a sequence of labels"):
        fit(X, [Y[0], "B-VP"])


def test_empty_sequence():
    with pytest.raises(ValueError, match=r"X\[1\] is an empty sequence"):
        fit([X[0], []], [Y[0], []])


def test_no_sequences():
    with pytest.raises(ValueError, match="no training sequences"):
        fit([], [])


def test_unknown_algorithm():
    with pytest.raises(ValueError, match=r"algorithm='crfsuite-l2sgd'.*allowed: lbfgs, separate"):
        fit(X, Y, algorithm="crfsuite-l2sgd")


def test_negative_c2_names_the_parameter_and_range():
    with pytest.raises(ValueError, match=r"c2=-1\.0 is invalid.*allowed: 0 to 1e9"):
        fit(X, Y, c2=-1.0)


@pytest.mark.parametrize("params, name", [
    ({"max_iterations": 0}, "max_iterations"),
    ({"num_threads": 0}, "num_threads"),
    ({"min_freq": -3}, "min_freq"),
    ({"c1": "lots"}, "c1"),
    ({"all_possible_states": "maybe"}, "all_possible_states"),
])
def test_bad_options_name_the_python_parameter(params, name):
    with pytest.raises(ValueError, match=r"CRF parameter %s=" % name):
        fit(X, Y, **params)


def test_bad_feature_values_name_the_sequence():
    with pytest.raises(ValueError, match=r"X\[1\].*unsupported value None"):
        fit([X[0], [{"w": None}]], Y)
    with pytest.raises(ValueError, match=r"X\[0\]"):
        fit([[{"w": "a"}, 3], X[1]], Y)


def test_x_not_a_list_of_sequences():
    with pytest.raises(ValueError, match="X must be a list of sequences"):
        fit("not a list", Y)


def test_bad_template_inputs(tmp_path):
    columns = [[["the", "DT"], ["dog", "NN"]], [["runs", "VBZ"]]]
    with pytest.raises(OSError, match="no-such.template"):
        fit(columns, Y, template=str(tmp_path / "no-such.template"))
    bad = tmp_path / "bad.template"
    bad.write_text("U00:%x[0,\n")
    with pytest.raises(ValueError, match="bad.template"):
        fit(columns, Y, template=str(bad))
    with pytest.raises(ValueError, match=r"X\[1\]\[0\]: 3 columns where earlier tokens have 2"):
        fit([columns[0], [["runs", "VBZ", "x"]]], Y, template="default")


def test_predict_with_the_wrong_input_kind():
    crf = fit(X, Y)
    with pytest.raises(ValueError, match=r"X\[0\] is an empty sequence"):
        crf.predict([[]])
    with pytest.raises(ValueError, match="unsupported"):
        crf.predict([[42]])


@pytest.mark.parametrize("value", [1e39, -1e39, float("inf"), float("nan")])
def test_out_of_float_range_values_name_sequence_and_position(value):
    # Issue 15: 1e39 became inf in training and gave a NaN model or a RuntimeError.
    with pytest.raises(ValueError, match=r"X\[1\]\[0\]: feature 'w'.*float range"):
        fit([X[0], [{"w": value}] * len(Y[1])], Y)


def test_library_errors_name_the_real_sequence_and_position(tmp_path):
    # The C++ library itself names the place of in-memory data (X[i][t]), not a made-up line.
    columns = [[["the", "DT"], ["dog", "NN"]], [["runs", "VBZ"]]]
    crf = fit(columns, Y, template="default")
    with pytest.raises(ValueError, match=r"^X\[0\]\[0\]: the model expects 3 columns .* found 4$"):
        crf.predict([[["runs", "VBZ", "x", "y"]], [["a", "DT", "x", "y"]]])
    template = tmp_path / "wide.template"
    template.write_text("U00:%x[0,5]\n")
    with pytest.raises(ValueError, match=r"^X\[0\]\[0\]: the template reads column 5 but the data"):
        septa.CRF(template=str(template), max_iterations=5).fit(columns, Y)
    with pytest.raises(ValueError, match=r"^X_dev\[0\]\[0\]: expected 3 columns"):
        septa.CRF(template="default", max_iterations=5).fit(columns, Y, [[["a"]]], [["O"]])
