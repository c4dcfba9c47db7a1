#include "crf/algorithms/checkpoint.h"

#include "crf/io/binary_io.h"
#include "septa/error.h"
#include "util/atomic_file.h"

namespace septa::crf {
namespace {

constexpr char kMagic[] = "SEPTA-SGD-CHECKPOINT-1";

}  // namespace

Checkpoint::Checkpoint(const TrainOptions& options)
    : path_(options.checkpoint), every_(options.checkpoint_every) {
  if (options.algorithm == "lbfgs" || !options.local_sgd)
    throw OptionError("option --checkpoint/--resume: only SGD training (separate, piecewise, "
                      "memm with --local-optimizer sgd) has checkpoints");
  // Everything that changes the SGD trajectory (threads never do).
  for (const OptionSpec& spec : train_option_specs())
    if (spec.name != "threads" && spec.name != "checkpoint" && spec.name != "checkpoint-every" &&
        spec.name != "resume" && spec.name != "epochs" && spec.name != "unary-epochs")
      fingerprint_ += spec.name + "=" + spec.get(options) + ";";
  if (options.resume.empty()) return;
  const std::string bytes = read_file(options.resume);
  ByteReader in(bytes.data(), bytes.size(), options.resume);
  if (in.str() != kMagic) in.fail("not a septa checkpoint");
  if (in.str() != fingerprint_)
    throw OptionError("option --resume: " + options.resume +
                      " was written with other training options");
  const uint64_t count = in.u64();
  for (uint64_t i = 0; i < count; ++i) {
    const std::string name = in.str();
    Phase& phase = phases_[name];
    phase.epochs = static_cast<int>(in.u64());
    phase.weights = in.vec<double>();
  }
  if (!in.at_end()) in.fail("trailing bytes");
}

int Checkpoint::restore(const std::string& phase, std::vector<double>& w) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = phases_.find(phase);
  if (it == phases_.end()) return 0;
  if (it->second.weights.size() != w.size())
    throw OptionError("option --resume: factor " + phase + " has " +
                      std::to_string(it->second.weights.size()) + " weights in the checkpoint, " +
                      std::to_string(w.size()) + " in this training run");
  w = it->second.weights;
  return it->second.epochs;
}

void Checkpoint::record(const std::string& phase, int epoch, const std::vector<double>& w,
                        bool last) {
  std::lock_guard<std::mutex> lock(mutex_);
  Phase& entry = phases_[phase];
  entry.epochs = epoch;
  entry.weights = w;
  if (path_.empty() || (!last && epoch % every_ != 0)) return;
  ByteWriter out;
  out.str(kMagic);
  out.str(fingerprint_);
  out.u64(phases_.size());
  for (const auto& [name, state] : phases_) {
    out.str(name);
    out.u64(static_cast<uint64_t>(state.epochs));
    out.vec(state.weights);
  }
  write_file_atomically(path_, out.bytes());
}

}  // namespace septa::crf
