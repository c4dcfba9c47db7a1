// The registry entries of the slimmable-ViT family: Scala, US-Net, and separately trained ViTs.
#pragma once

#include "nn/registry.h"

namespace septa::nn {

// "scala": one slimmable ViT trained by the sandwich rule with stable sampling, isolated
// activation, progressive knowledge transfer, noise calibration and a distilled full width.
MethodEntry scala_method();
// "usnet": the same ViT and recipe trained as US-Net (Yu & Huang 2019): sandwich rule with two
// uniformly drawn intermediate widths, nested (front) slicing, in-place distillation from the
// full net.
MethodEntry usnet_method();
// "vit-separate": one dense ViT per width, each trained on its own with the same recipe.
MethodEntry separate_vit_method();

}  // namespace septa::nn

namespace septa::nn {

// The width report and export of a run directory (src/nn/methods/scala/report.cc).
std::vector<WidthRow> slimmable_report(const RunInputs& in, const std::vector<double>& off_grid,
                                       bool latency);
void slimmable_export(const RunInputs& in, double r, const std::string& path);
std::vector<WidthRow> separate_report(const RunInputs& in, const std::vector<double>& off_grid,
                                      bool latency);

}  // namespace septa::nn
