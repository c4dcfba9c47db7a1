// septa._septa.merge: the merge engine for septa.merge (python/septa/_merge.py).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <Python.h>

#include "septa/error.h"
#include "septa/merge.h"

namespace py = pybind11;

namespace {

using septa::merge::MergeConfig;

[[noreturn]] void bad(const std::string& what) { throw septa::OptionError(what); }

std::string text(const py::handle& value, const std::string& key) {
  if (py::isinstance<py::str>(value)) return value.cast<std::string>();
  // os.PathLike
  if (py::hasattr(value, "__fspath__")) return value.attr("__fspath__")().cast<std::string>();
  bad("'" + key + "' must be a string or path, got " + std::string(py::str(py::type::of(value))));
}

double number(const py::handle& value, const std::string& key) {
  if (py::isinstance<py::bool_>(value) || !(py::isinstance<py::float_>(value) || py::isinstance<py::int_>(value)))
    bad("'" + key + "' must be a number, got " + std::string(py::str(value)));
  return value.cast<double>();
}

void check_keys(const py::dict& d, std::initializer_list<const char*> allowed, const std::string& where) {
  for (const auto& item : d) {
    const std::string key = py::str(item.first);
    bool known = false;
    for (const char* a : allowed) known |= key == a;
    if (!known) bad("unknown key '" + key + "' in " + where);
  }
}

// Applies a mergekit-shaped dict (the YAML's keys, plus threads and out_shard_size) to `config`.
void apply(const py::dict& d, MergeConfig& config) {
  check_keys(d, {"merge_method", "base_model", "models", "parameters", "dtype", "out_dtype", "seed", "threads",
                 "out_shard_size", "sync"},
             "the merge config");
  if (d.contains("merge_method")) config.method = septa::merge::parse_method(text(d["merge_method"], "merge_method"));
  if (d.contains("base_model")) config.base_model = text(d["base_model"], "base_model");
  if (d.contains("dtype")) config.dtype = text(d["dtype"], "dtype");
  if (d.contains("out_dtype")) config.dtype = text(d["out_dtype"], "out_dtype");
  if (d.contains("seed")) {
    const long long seed = d["seed"].cast<long long>();
    if (seed < 0) bad("'seed' must be >= 0");
    config.seed = static_cast<std::uint64_t>(seed);
  }
  if (d.contains("threads")) config.threads = d["threads"].cast<int>();
  if (d.contains("sync")) config.sync = d["sync"].cast<bool>();
  if (d.contains("out_shard_size")) {
    const py::object size = d["out_shard_size"];
    if (py::isinstance<py::str>(size)) config.out_shard_size = septa::merge::parse_size(size.cast<std::string>(), "out_shard_size");
    else if (!size.is_none()) config.out_shard_size = size.cast<std::uint64_t>();
  }
  if (d.contains("parameters")) {
    const py::dict p = d["parameters"].cast<py::dict>();
    check_keys(p, {"normalize", "lambda", "weight", "density", "t"}, "parameters");
    if (p.contains("normalize")) {
      if (!py::isinstance<py::bool_>(p["normalize"])) bad("'normalize' must be True or False");
      config.normalize = p["normalize"].cast<bool>();
    }
    if (p.contains("lambda")) config.lambda = number(p["lambda"], "lambda");
    if (p.contains("weight")) config.weight = number(p["weight"], "weight");
    if (p.contains("density")) config.density = number(p["density"], "density");
    if (p.contains("t")) config.t = number(p["t"], "t");
  }
  if (d.contains("models")) {
    config.models.clear();
    for (const py::handle item : d["models"].cast<py::list>()) {
      septa::merge::ModelEntry entry;
      if (py::isinstance<py::dict>(item)) {
        const py::dict m = item.cast<py::dict>();
        check_keys(m, {"model", "parameters"}, "a models entry");
        if (!m.contains("model")) bad("a models entry without 'model'");
        entry.model = text(m["model"], "model");
        if (m.contains("parameters")) {
          const py::dict p = m["parameters"].cast<py::dict>();
          check_keys(p, {"weight", "density"}, "models[].parameters");
          if (p.contains("weight")) entry.weight = number(p["weight"], "weight");
          if (p.contains("density")) entry.density = number(p["density"], "density");
        }
      } else {
        entry.model = text(item, "model");
      }
      config.models.push_back(std::move(entry));
    }
  }
}

py::dict merge(const std::string& config_path, const py::dict& settings, const std::string& out_dir, bool dry_run) {
  MergeConfig config;
  if (!config_path.empty()) config = septa::merge::load_config(config_path);
  apply(settings, config);
  septa::merge::MergeResult result;
  {
    py::gil_scoped_release release;
    auto progress = [](const septa::merge::MergeProgress&) {
      py::gil_scoped_acquire acquire;
      if (PyErr_CheckSignals() != 0) {
        PyErr_Clear();
        return false;
      }
      return true;
    };
    result = septa::merge::run_merge(config, out_dir, dry_run, progress);
  }
  py::dict out;
  out["files"] = result.files;
  out["tensors"] = result.tensors;
  out["input_bytes"] = result.input_bytes;
  out["output_bytes"] = result.output_bytes;
  out["plan"] = result.plan;
  return out;
}

}  // namespace

void bind_merge(py::module_& m) {
  m.def("merge", &merge, py::arg("config_path"), py::arg("settings"), py::arg("out_dir"), py::arg("dry_run"),
        "Runs septa merge (see septa.merge).");
}
