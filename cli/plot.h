// Figures drawn by gnuplot (Debian's gnuplot-nox): the data and a script go to a temporary
// folder, gnuplot writes the image (.png or .svg, chosen by the file name).
#pragma once

#include <string>
#include <vector>

#include "septa/crf/evaluation.h"
#include "septa/crf/trainer.h"

namespace septa::cli {

// Checks, before long work, that `image` ends in .png or .svg and can be written.
void check_image_name(const std::string& image);

// Objective per progress report (left axis) and dev F1 or accuracy (right axis).
void plot_learning_curve(const std::vector<crf::TrainProgress>& history, const std::string& image);
// The gold-by-guess type confusion, each gold row as percentages of its tokens.
void plot_confusion(const crf::EvaluationResult& result, const std::string& image);

}  // namespace septa::cli
