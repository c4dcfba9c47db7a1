// The Fashion-MNIST composite protocol of septa/nn/vba.h (bench_fashion_composite).
#include <chrono>
#include <cmath>

#include "nn/guarded.h"
#include "nn/loop.h"
#include "nn/methods/vba/composite.h"
#include "nn/methods/vba/training.h"
#include "nn/registry.h"
#include "septa/nn/vba.h"

namespace septa::nn::vba {
namespace {

constexpr int64_t kClasses = 10;

// A small convolutional classifier of left halves [B][392] (28 rows x 14 columns):
// Conv(1->32, 3x3) ReLU MaxPool(2) [32][14][7], Conv(32->64, 3x3) ReLU MaxPool(2) [64][7][3],
// Linear(1344, 128) ReLU Linear(128, 10) (192,266 weights).
struct HalfClassifierImpl : torch::nn::Module {
  HalfClassifierImpl() {
    namespace nn = torch::nn;
    net = register_module(
        "net", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 32, 3).padding(1)), nn::ReLU(),
                              nn::MaxPool2d(2), nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)),
                              nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(), nn::Linear(64 * 7 * 3, 128),
                              nn::ReLU(), nn::Linear(128, kClasses)));
  }
  torch::Tensor forward(const torch::Tensor& halves) {
    return net->forward(halves.reshape({halves.size(0), 1, kSide, kSide / 2}));
  }
  torch::nn::Sequential net{nullptr};
};
TORCH_MODULE(HalfClassifier);

// Every image of `images` prepared exactly as y's left half is (rotated by U(-30, 30) degrees,
// squeezed to 28x14, binarised), each call with fresh angles and pixel draws:
// ([N][392], [N] classes).
std::pair<torch::Tensor, torch::Tensor> prepared_halves(const Dataset& images, torch::Generator generator) {
  const torch::Tensor inputs = images.inputs.to(torch::kCPU);
  const torch::Tensor halves = left_half(compose_halves(inputs, inputs, generator));
  return {binarise(halves, generator), images.labels.to(torch::kCPU)};
}

// Entropy in nats of the empirical distribution of `classes` [N] over 10 classes.
double entropy(const torch::Tensor& classes) {
  const torch::Tensor counts = torch::bincount(classes, {}, kClasses).to(torch::kFloat64);
  const torch::Tensor p = counts / counts.sum();
  const torch::Tensor terms = torch::where(p > 0, -p * p.log(), torch::zeros_like(p));
  return terms.sum().item<double>();
}

}  // namespace

CompositeBenchReport bench_fashion_composite(const CompositeBenchConfig& config,
                                             const ProgressCallback& progress) {
  return guarded([&] {
    OptionValues given = config.options;
    given["bernoulli-y"] = "1";
    given["bernoulli-z"] = "1";
    const Options options(find_method("vba").info, given);
    const TrainOptions o = train_options(options);
    if (config.n < 1 || config.cell_n < 1 || config.k < 1 || config.samples < 1)
      throw OptionError("vba bench (fashion-composite): --n, --cell-n, --k and --samples must be >= 1");
    const RunContext ctx = run_context(options, config.device, config.threads, progress);
    const Split split = load_idx_split(config.images);
    torch::Generator generator = cpu_generator(config.data_seed);
    const Composite observed = observational_composite(split.train, config.n, generator);
    const Triples train{observed.data.x.to(ctx.device), observed.data.y.to(ctx.device),
                        observed.data.z.to(ctx.device)};

    CompositeBenchReport report;
    auto run = [&](const StageOutcome& outcome) {
      report.train_seconds += outcome.seconds;
      report.cancelled = report.cancelled || (outcome.stopped && !outcome.complete);
      return !report.cancelled;
    };
    Model model = build_model(o, kPixels, kPixels, kPixels, ctx.device);
    for (const auto& name : kStage1)
      if (!run(fit_component(model, name, train, o, ctx))) return report;
    if (!run(finetune(model, train, o, ctx))) return report;

    // The classifier of left halves, trained through the same loop on all training images,
    // prepared afresh each epoch (new angles and binarisation), Adam with a cosine-decayed rate.
    HalfClassifier classifier{nullptr};
    torch::Generator classifier_generator = seeded_build(o.seed + 50, [&] { classifier = HalfClassifier(); });
    classifier->to(ctx.device);
    torch::Generator halves_generator = cpu_generator(config.data_seed * 31 + 17);
    constexpr int kClassifierEpochs = 10;
    constexpr double kClassifierRate = 2e-3;
    torch::optim::Adam adam(classifier->parameters(), torch::optim::AdamOptions(kClassifierRate));
    classifier->train();
    for (int epoch = 0; epoch < kClassifierEpochs; ++epoch) {
      const auto [halves, labels] = prepared_halves(split.train, halves_generator);
      const torch::Tensor h = halves.to(ctx.device), l = labels.to(ctx.device);
      const double rate = kClassifierRate * 0.5 * (1.0 + std::cos(M_PI * epoch / kClassifierEpochs));
      for (auto& group : adam.param_groups())
        static_cast<torch::optim::AdamOptions&>(group.options()).lr(rate);
      Stage stage;
      stage.name = "left-half classifier, epoch " + std::to_string(epoch + 1) + "/" +
                   std::to_string(kClassifierEpochs);
      stage.epochs = 1;
      stage.batch_size = 100;
      stage.examples = h.size(0);
      stage.generator = classifier_generator;
      stage.step = [&](const torch::Tensor& batch) {
        const torch::Tensor loss = torch::nn::functional::cross_entropy(
            classifier->forward(h.index_select(0, batch)), l.index_select(0, batch));
        adam.zero_grad();
        loss.backward();
        adam.step();
        return std::vector<double>{loss.item<double>()};
      };
      stage.modules = {classifier.get()};
      stage.optimizers = {&adam};
      if (!run(run_stage(stage, ctx))) return report;
    }
    classifier->eval();
    torch::NoGradGuard no_grad;
    const auto start = std::chrono::steady_clock::now();
    const auto [test_halves, test_labels] = prepared_halves(split.test, halves_generator);
    report.classifier_accuracy =
        accuracy(classifier->forward(test_halves.to(ctx.device)).argmax(1), test_labels.to(ctx.device));

    // (a) the 10 x 10 interventional cells, from the held-out images.
    torch::Generator eval = cpu_generator(config.data_seed * 7919 + 3);
    report.vba_cells.assign(kClasses, std::vector<double>(kClasses, 0.0));
    report.conditional_cells = report.vba_cells;
    int off = 0;
    for (int64_t a = 0; a < kClasses; ++a)
      for (int64_t b = 0; b < kClasses; ++b) {
        const Composite cell = cell_composite(split.test, a, b, config.cell_n, generator);
        const torch::Tensor x = cell.data.x.to(ctx.device), y = cell.data.y.to(ctx.device);
        const double v = log_p_do(model, y, x, config.k, eval).log_p.mean().item<double>();
        const double c = conditional_log_p(model, y, x, eval).mean().item<double>();
        report.vba_cells[a][b] = v;
        report.conditional_cells[a][b] = c;
        if (b == (a + kClasses - 1) % kClasses) continue;  // z is x's confounding class
        ++off;
        report.vba_off += v;
        report.conditional_off += c;
        report.cells_vba_better += v > c ? 1 : 0;
      }
    report.vba_off /= off;
    report.conditional_off /= off;

    // (b) class entropies of the left halves of y per class of x: drawn under do(x), under
    // conditioning on x (5 images of each class), and of the observational data itself (real
    // composites with x of that class: the left half is always of class x - 1, so this is the
    // entropy the classifier's own confusion leaves, the floor under conditioning).
    for (int64_t a = 0; a < kClasses; ++a) {
      const Composite real = cell_composite(split.test, a, (a + kClasses - 1) % kClasses, config.samples, generator);
      const torch::Tensor predicted = classifier->forward(left_half(real.data.y).to(ctx.device)).argmax(1);
      report.entropy_data += entropy(predicted.to(torch::kCPU)) / kClasses;
    }
    constexpr int64_t kImagesPerClass = 5;
    const int64_t per_image = std::max<int64_t>(1, config.samples / kImagesPerClass);
    for (int64_t a = 0; a < kClasses; ++a) {
      const Composite cell = cell_composite(split.test, a, 0, kImagesPerClass, generator);
      std::vector<torch::Tensor> under_do, under_conditioning;
      for (int64_t i = 0; i < kImagesPerClass; ++i) {
        const torch::Tensor x = cell.data.x[i].to(ctx.device);
        under_do.push_back(classifier->forward(left_half(sample_do(model, x, per_image, eval))).argmax(1));
        under_conditioning.push_back(
            classifier->forward(left_half(sample_conditional(model, x, per_image, eval))).argmax(1));
      }
      report.entropy_do += entropy(torch::cat(under_do).to(torch::kCPU)) / kClasses;
      report.entropy_conditional += entropy(torch::cat(under_conditioning).to(torch::kCPU)) / kClasses;
    }
    report.eval_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
  });
}

}  // namespace septa::nn::vba
