// septa._septa: a thin pybind11 layer over septa's public C++ API. It converts Python data to
// the library's structs (with the GIL held), releases the GIL while training and tagging, and
// translates septa's exceptions. Feature conversion rules, validation messages and docstrings
// live in the pure-Python package (septa/_crf.py, septa/metrics.py).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <Python.h>

#include <cmath>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "septa/crf/corpus.h"
#include "septa/crf/evaluation.h"
#include "septa/crf/feature_template.h"
#include "septa/crf/model.h"
#include "septa/crf/options.h"
#include "septa/crf/trainer.h"
#include "septa/error.h"
#include "util/progress_line.h"

namespace py = pybind11;
namespace crf = septa::crf;

namespace {

// ---- conversions (GIL held) ----

// Python: list of sequences; sequence: list of items; item: list of (name, value) pairs.
using PyAttributes = std::vector<std::vector<std::vector<std::pair<std::string, double>>>>;
using PyLabels = std::vector<std::vector<std::string>>;
using PyColumns = std::vector<std::vector<std::vector<std::string>>>;

// Sequences are not from a file (first_line 0): the library names item t of sequence `index`
// "<source>[index][t]", as the Python side names X[i][t].
crf::AttributeSequence to_attribute_sequence(
    const std::vector<std::vector<std::pair<std::string, double>>>& items,
    const std::vector<std::string>* labels, std::size_t index = 0, const char* source = "X") {
  crf::AttributeSequence sequence;
  sequence.attributes.reserve(items.size());
  for (std::size_t t = 0; t < items.size(); ++t) {
    auto& out = sequence.attributes.emplace_back();
    out.reserve(items[t].size());
    for (const auto& [name, value] : items[t]) out.push_back(crf::Attribute{name, value});
    sequence.labels.push_back(labels ? (*labels)[t] : std::string());
  }
  sequence.source = source;
  sequence.index = index;
  return sequence;
}

std::vector<crf::AttributeSequence> to_attribute_data(const PyAttributes& x, const PyLabels* y,
                                                      const char* source = "X") {
  if (y && y->size() != x.size())
    throw septa::FormatError("X and y differ in length");
  std::vector<crf::AttributeSequence> data;
  data.reserve(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (y && (*y)[i].size() != x[i].size())
      throw septa::FormatError("sequence " + std::to_string(i) + ": features and labels differ in length");
    data.push_back(to_attribute_sequence(x[i], y ? &(*y)[i] : nullptr, i, source));
  }
  return data;
}

// Tokens as column lists; with labels, each label becomes the last column.
crf::ColumnSentence to_column_sentence(const std::vector<std::vector<std::string>>& tokens,
                                       const std::vector<std::string>* labels,
                                       std::size_t index = 0, const char* source = "X") {
  crf::ColumnSentence sentence;
  sentence.columns = tokens;
  if (labels)
    for (std::size_t t = 0; t < tokens.size(); ++t) sentence.columns[t].push_back((*labels)[t]);
  sentence.source = source;  // not from a file, as to_attribute_sequence
  sentence.index = index;
  return sentence;
}

std::vector<crf::ColumnSentence> to_column_data(const PyColumns& x, const PyLabels* y,
                                                const char* source = "X") {
  if (y && y->size() != x.size()) throw septa::FormatError("X and y differ in length");
  std::vector<crf::ColumnSentence> data;
  data.reserve(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (y && (*y)[i].size() != x[i].size())
      throw septa::FormatError("sequence " + std::to_string(i) + ": tokens and labels differ in length");
    data.push_back(to_column_sentence(x[i], y ? &(*y)[i] : nullptr, i, source));
  }
  return data;
}

crf::TrainOptions to_options(const std::map<std::string, std::string>& values) {
  crf::TrainOptions options;
  for (const auto& [name, value] : values) crf::set_train_option(options, name, value);
  crf::validate(options);
  return options;
}

// ---- training with progress, signals and Python errors ----

// The progress callback: briefly takes the GIL to print (when verbose), run an optional Python
// hook and check for Ctrl-C. Any Python error stops training; it is kept to be raised after.
class Progress {
 public:
  Progress(bool verbose, py::object hook) : verbose_(verbose), hook_(std::move(hook)) {}

  bool operator()(const crf::TrainProgress& p) {
    py::gil_scoped_acquire gil;
    try {
      if (verbose_)
        py::module_::import("sys").attr("stderr").attr("write")(crf::format_progress(p) + "\n");
      if (!hook_.is_none()) {
        py::dict info;
        info["phase"] = p.phase;
        info["iteration"] = p.iteration;
        info["objective"] = p.objective;
        info["grad_norm"] = p.grad_norm;
        info["active_features"] = p.active_features;
        info["seconds"] = p.seconds;
        info["dev_accuracy"] = p.dev_accuracy;
        info["dev_f1"] = p.dev_f1;
        info["line"] = crf::format_progress(p);
        info["feature_norm"] = p.feature_norm;
        info["linesearch_trials"] = p.linesearch_trials;
        info["linesearch_step"] = p.linesearch_step;
        py::list labels;  // (label, match, model, ref) per model label; empty without dev data
        for (const auto& c : p.dev_labels) labels.append(py::make_tuple(c.label, c.match, c.model, c.ref));
        info["dev_labels"] = labels;
        info["dev_items"] = p.dev_items;
        info["dev_items_correct"] = p.dev_items_correct;
        info["dev_sequences"] = p.dev_sequences;
        info["dev_sequences_correct"] = p.dev_sequences_correct;
        if (hook_(info).is(py::bool_(false))) {
          stopped_ = true;
          return false;
        }
      }
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    } catch (py::error_already_set& e) {
      error_ = e.value();
      return false;
    }
    return true;
  }

  // The Python exception raised during training (None when none).
  py::object error() const { return error_; }
  bool stopped_by_hook() const { return stopped_; }

 private:
  bool verbose_;
  py::object hook_;
  py::object error_ = py::none();
  bool stopped_ = false;
};

py::dict result_info(const crf::TrainResult& result, const Progress& progress) {
  py::dict info;
  info["cancelled"] = result.cancelled;
  info["iterations"] = result.iterations;
  info["seconds"] = result.seconds;
  info["features"] = result.features;
  info["stop_reason"] = result.stop_reason;
  info["kept_iteration"] = result.kept_iteration;
  info["kept_metric"] = result.kept_metric;
  info["kept_score"] = result.kept_score;
  info["chosen_c2"] = result.chosen_c2;
  info["chosen_eta"] = result.chosen_eta;
  info["kept_line"] = result.kept_iteration >= 0
                          ? py::object(py::str(septa::util::format_kept_iteration(
                                result.kept_iteration, result.kept_metric, result.kept_score)))
                          : py::object(py::none());
  info["error"] = progress.error();
  info["stopped_by_callback"] = progress.stopped_by_hook();
  return info;
}

template <typename Train>
py::tuple run_training(bool verbose, py::object hook, Train train) {
  Progress progress(verbose, std::move(hook));
  crf::ProgressCallback callback = [&progress](const crf::TrainProgress& p) { return progress(p); };
  crf::TrainResult result;
  {
    py::gil_scoped_release release;
    result = train(callback);
  }
  if (verbose && result.kept_iteration >= 0)
    py::module_::import("sys").attr("stderr").attr("write")(
        septa::util::format_kept_iteration(result.kept_iteration, result.kept_metric, result.kept_score) +
        "\n");
  return py::make_tuple(std::move(result.model), result_info(result, progress));
}

py::tuple train_attributes(const PyAttributes& x, const PyLabels& y,
                           const std::map<std::string, std::string>& option_values,
                           const PyAttributes& x_dev, const PyLabels& y_dev, bool verbose,
                           py::object hook) {
  const crf::TrainOptions options = to_options(option_values);
  const auto data = to_attribute_data(x, &y);
  const auto dev = to_attribute_data(x_dev, &y_dev, "X_dev");
  return run_training(
      verbose, std::move(hook),
      [&](const crf::ProgressCallback& cb) { return crf::train(data, options, dev, cb); });
}

py::tuple train_columns(const PyColumns& x, const PyLabels& y, const std::string& template_path,
                        const std::string& template_text,
                        const std::map<std::string, std::string>& option_values,
                        const PyColumns& x_dev, const PyLabels& y_dev, bool verbose,
                        py::object hook) {
  const crf::TrainOptions options = to_options(option_values);
  const crf::FeatureTemplate feature_template =
      !template_path.empty()   ? crf::FeatureTemplate::parse_file(template_path)
      : !template_text.empty() ? crf::FeatureTemplate::parse(template_text, "<template>")
                               : crf::FeatureTemplate::default_chunking();
  const auto data = to_column_data(x, &y);
  const auto dev = to_column_data(x_dev, &y_dev, "X_dev");
  return run_training(verbose, std::move(hook), [&](const crf::ProgressCallback& cb) {
    return crf::train(data, "<X>", feature_template, options, dev, cb);
  });
}

// ---- tagging ----

py::list tag_results(const std::vector<crf::TagResult>& results, bool marginals) {
  py::list out;
  for (const crf::TagResult& r : results) {
    if (marginals)
      out.append(py::make_tuple(r.labels, r.log_probability, r.marginals));
    else
      out.append(py::make_tuple(r.labels, r.log_probability, py::none()));
  }
  return out;
}

template <typename Sequence>
py::list tag_all(const crf::Model& model, const std::vector<Sequence>& data, bool marginals) {
  std::vector<crf::TagResult> results;
  results.reserve(data.size());
  {
    py::gil_scoped_release release;
    // Errors name the sequence and item themselves ("X[i][t]: ...", see to_column_sentence).
    for (const Sequence& sequence : data) results.push_back(model.tag(sequence, marginals));
  }
  return tag_results(results, marginals);
}

// ---- evaluation ----

py::dict counts_dict(const crf::ChunkCounts& c) {
  py::dict d;
  d["gold"] = c.gold;
  d["guessed"] = c.guessed;
  d["correct"] = c.correct;
  d["precision"] = c.precision();
  d["recall"] = c.recall();
  d["f1"] = c.f1();
  return d;
}

crf::EvaluationResult evaluate(const PyLabels& gold, const PyLabels& guess,
                               const std::string& scheme) {
  if (scheme != "iob" && scheme != "iobes")
    throw septa::OptionError("scheme: invalid value '" + scheme + "' (allowed: iob, iobes)");
  if (gold.size() != guess.size()) throw septa::FormatError("y_true and y_pred differ in length");
  crf::ChunkEvaluator evaluator(scheme == "iob" ? crf::TagScheme::kIob : crf::TagScheme::kIobes);
  for (std::size_t i = 0; i < gold.size(); ++i) {
    if (gold[i].size() != guess[i].size())
      throw septa::FormatError("sequence " + std::to_string(i) +
                               ": y_true and y_pred differ in length");
    evaluator.add_sentence(gold[i], guess[i]);
  }
  return evaluator.result();
}

py::dict evaluation_dict(const crf::EvaluationResult& result) {
  py::dict d;
  d["tokens"] = result.tokens;
  d["correct_tokens"] = result.correct_tokens;
  d["accuracy"] = result.accuracy();
  d["overall"] = counts_dict(result.overall);
  py::dict by_type;
  for (const auto& [type, counts] : result.by_type) by_type[py::str(type)] = counts_dict(counts);
  d["by_type"] = by_type;
  return d;
}

py::list features_list(const std::vector<crf::WeightedFeature>& features) {
  py::list out;
  for (const crf::WeightedFeature& f : features) out.append(py::make_tuple(f.from, f.to, f.weight));
  return out;
}

}  // namespace

void bind_merge(py::module_& m);  // merge_bindings.cc

PYBIND11_MODULE(_septa, m) {
  m.doc() = "septa's C++ core (internal: use the septa package)";

  static py::exception<septa::ModelError> model_error(m, "ModelError", PyExc_ValueError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const septa::FormatError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const septa::OptionError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const septa::IoError& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    } catch (const septa::ModelError& e) {
      model_error(e.what());
    } catch (const septa::NumericalError& e) {
      PyErr_SetString(PyExc_FloatingPointError, e.what());
    } catch (const septa::Cancelled& e) {
      PyErr_SetString(PyExc_KeyboardInterrupt, e.what());
    } catch (const septa::InternalError& e) {
      PyErr_SetString(PyExc_RuntimeError, (std::string("septa internal error: ") + e.what()).c_str());
    } catch (const septa::Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });

  m.def("option_specs", [] {
    py::list out;
    const crf::TrainOptions defaults;
    for (const crf::OptionSpec& spec : crf::train_option_specs())
      out.append(py::make_tuple(spec.name, spec.help, spec.get(defaults)));
    return out;
  });
  m.def("check_option", [](const std::string& name, const std::string& value) {
    crf::TrainOptions options;
    crf::set_train_option(options, name, value);
    return crf::train_option_specs().size();
  });

  py::class_<crf::Model>(m, "Model")
      .def_static("load",
                  [](const std::string& path, std::size_t max_bytes) {
                    return crf::Model::load(path, max_bytes);
                  },
                  py::arg("path"),
                  py::arg("max_bytes") = crf::kDefaultMaxModelBytes,
                  py::call_guard<py::gil_scoped_release>())
      .def("save", &crf::Model::save, py::arg("path"), py::call_guard<py::gil_scoped_release>())
      .def("to_bytes", [](const crf::Model& model) { return py::bytes(model.to_bytes()); })
      .def_static("from_bytes",
                  [](const py::bytes& bytes) {
                    return crf::Model::from_bytes(std::string(bytes), "<pickled model>");
                  })
      .def_property_readonly("algorithm", &crf::Model::algorithm)
      .def_property_readonly("input_format",
                             [](const crf::Model& model) {
                               return model.input_format() == crf::InputFormat::kColumns
                                          ? "columns"
                                          : "attributes";
                             })
      .def_property_readonly("labels", &crf::Model::labels)
      .def_property_readonly("columns", &crf::Model::columns)
      .def_property_readonly("feature_count", &crf::Model::feature_count)
      .def_property_readonly("attributes", &crf::Model::attributes)
      .def("log_probability_attributes",
           [](const crf::Model& model, const std::vector<std::vector<std::pair<std::string, double>>>& x,
              const std::vector<std::string>& labels) {
             const crf::AttributeSequence sequence = to_attribute_sequence(x, nullptr);
             return model.log_probability(sequence, labels);
           })
      .def("log_probability_columns",
           [](const crf::Model& model, const std::vector<std::vector<std::string>>& x,
              const std::vector<std::string>& labels) {
             const crf::ColumnSentence sentence = to_column_sentence(x, nullptr);
             return model.log_probability(sentence, labels);
           })
      .def("state_features", [](const crf::Model& model) { return features_list(model.state_features()); })
      .def("transition_features",
           [](const crf::Model& model) { return features_list(model.transition_features()); })
      .def("conditioned_transition_features",
           [](const crf::Model& model) {
             py::list out;
             for (const crf::ConditionedTransition& f : model.conditioned_transition_features())
               out.append(py::make_tuple(f.attribute, f.from, f.to, f.weight));
             return out;
           })
      .def("dump",
           [](const crf::Model& model, std::size_t top) {
             std::ostringstream out;
             model.dump(out, top);
             return out.str();
           },
           py::arg("top") = 20)
      .def("tag_attributes",
           [](const crf::Model& model, const PyAttributes& x, bool marginals) {
             return tag_all(model, to_attribute_data(x, nullptr), marginals);
           },
           py::arg("x"), py::arg("marginals") = false)
      .def("tag_columns",
           [](const crf::Model& model, const PyColumns& x, bool marginals) {
             return tag_all(model, to_column_data(x, nullptr), marginals);
           },
           py::arg("x"), py::arg("marginals") = false);

  m.def("train_attributes", &train_attributes, py::arg("x"), py::arg("y"), py::arg("options"),
        py::arg("x_dev"), py::arg("y_dev"), py::arg("verbose") = false,
        py::arg("callback") = py::none());
  m.def("train_columns", &train_columns, py::arg("x"), py::arg("y"), py::arg("template_path"),
        py::arg("template_text"), py::arg("options"), py::arg("x_dev"), py::arg("y_dev"),
        py::arg("verbose") = false, py::arg("callback") = py::none());

  m.def("evaluate",
        [](const PyLabels& gold, const PyLabels& guess, const std::string& scheme) {
          return evaluation_dict(evaluate(gold, guess, scheme));
        },
        py::arg("y_true"), py::arg("y_pred"), py::arg("scheme") = "iob");
  m.def("conlleval_report",
        [](const PyLabels& gold, const PyLabels& guess, const std::string& scheme) {
          std::ostringstream out;
          crf::write_conlleval_report(evaluate(gold, guess, scheme), out);
          return out.str();
        },
        py::arg("y_true"), py::arg("y_pred"), py::arg("scheme") = "iob");
  bind_merge(m);
}
