// --checkpoint / --resume for SGD-trained algorithms (separate, piecewise, memm).
//
// Sharded SGD's epoch e is a pure function of the mixed weights after epoch e-1, the epoch
// number, the data and the seed (shard order, visiting order, rates and step counts all follow
// from them; sgd.h), so its whole optimiser state is (factor, epochs done, weights). A
// checkpoint holds that for every factor trained so far; resuming skips finished factors and
// continues the current one at the next epoch, giving the model of an uninterrupted run.
// -a lbfgs has no checkpoints (its optimiser, minimize_ranged, does not save its history yet).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "septa/crf/options.h"

namespace septa::crf {

class Checkpoint {
 public:
  // Reads options.resume when set (ModelError when it is corrupt or from other options).
  explicit Checkpoint(const TrainOptions& options);

  // Epochs done of `phase` in the resumed file, its weights copied into w [dimension]; 0 when
  // the phase had not started.
  int restore(const std::string& phase, std::vector<double>& w) const;
  // After `epoch` of `phase` (`last`: its final epoch): keeps w, and writes the checkpoint file
  // atomically every checkpoint_every epochs and after a phase's last epoch.
  void record(const std::string& phase, int epoch, const std::vector<double>& w, bool last);

 private:
  struct Phase {
    int epochs = 0;
    std::vector<double> weights;
  };
  std::string fingerprint_;  // the options that shape the trajectory
  std::string path_;         // where to write (empty: nowhere)
  int every_ = 1;
  std::map<std::string, Phase> phases_;
  mutable std::mutex mutex_;  // factors may train concurrently (piecewise)
};

}  // namespace septa::crf
