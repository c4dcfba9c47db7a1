// VBA training: stage 2 leaves p(z) and p(y|x,z) bit-identical; checkpoints round-trip; the
// part-by-part pipeline in separate processes equals the in-process fit; a reduced
// linear-Gaussian run (d = 5) reaches a stated error.
#include <gtest/gtest.h>

#include <cstdlib>

#include "nn/methods/vba/data.h"
#include "nn/methods/vba/training.h"
#include "nn/registry.h"
#include "nn/test_util.h"
#include "septa/nn/vba.h"

namespace septa::nn::vba {
namespace {

Triples as_float(const Triples& t) {
  return {t.x.to(torch::kFloat32), t.y.to(torch::kFloat32), t.z.to(torch::kFloat32)};
}

TrainOptions small_options() {
  const Options options(find_method("vba").info, {{"epochs", "1"}, {"finetune-epochs", "1"}});
  return train_options(options);
}

RunContext context(const TrainOptions&) {
  RunContext ctx;
  ctx.metadata = run_metadata(Options(find_method("vba").info, {}));
  return ctx;
}

TEST(VbaTraining, StageTwoLeavesPriorAndOutcomeBitIdentical) {
  testing::setup_torch();
  torch::Generator generator = cpu_generator(2);
  const LinearGaussian lg = LinearGaussian::draw(3, generator);
  const Triples data = as_float(lg.generate(1500, generator));
  for (const bool hidden : {false, true}) {
    TrainOptions o = small_options();
    o.hidden = hidden ? 16 : 0;
    o.prior_latent = hidden ? 2 : 0;  // a VAE prior in the second round
    o.prior_hidden = hidden ? 8 : 0;
    o.outcome_latent = hidden ? 2 : 0;  // and a conditional-VAE p(y|x,z)
    Model model = build_model(o, 3, 3, 3, torch::kCPU);
    const RunContext ctx = context(o);
    for (const auto& name : kStage1) fit_component(model, name, data, o, ctx);
    Model before = build_model(o, 3, 3, 3, torch::kCPU);
    copy_weights(*model.prior, *before.prior);
    copy_weights(*model.outcome, *before.outcome);
    copy_weights(*model.encoder, *before.encoder);
    ASSERT_TRUE(same_weights(*model.encoder, *before.encoder));
    const StageOutcome outcome = finetune(model, data, o, ctx);
    ASSERT_TRUE(outcome.complete);
    EXPECT_TRUE(same_weights(*model.prior, *before.prior)) << "hidden " << hidden;
    EXPECT_TRUE(same_weights(*model.outcome, *before.outcome)) << "hidden " << hidden;
    EXPECT_FALSE(same_weights(*model.encoder, *before.encoder)) << "q must move";
    for (auto& p : model.prior->parameters()) EXPECT_TRUE(p.requires_grad());  // unfrozen again

    // The joint variant (the failure mode) moves all three: the check above can fail.
    o.joint = true;
    finetune(model, data, o, ctx);
    EXPECT_FALSE(same_weights(*model.outcome, *before.outcome));
    EXPECT_FALSE(same_weights(*model.prior, *before.prior));
  }
}

TEST(VbaTraining, ComponentCheckpointsRoundTripAndRefuseTheWrongComponent) {
  testing::setup_torch();
  const std::string dir = testing::temp_dir("vba_ckpt");
  TrainOptions o = small_options();
  o.prior_latent = 2;
  o.hidden = 8;
  o.bernoulli_z = true;
  Model model = build_model(o, 2, 3, 4, torch::kCPU);
  const Metadata metadata = run_metadata(Options(find_method("vba").info, {}));
  save_prior(dir + "/prior.safetensors", "prior", model.prior, metadata);
  save_conditional(dir + "/encoder.safetensors", "encoder", model.encoder, metadata);
  Prior prior = load_prior(dir + "/prior.safetensors", "prior");
  Conditional encoder = load_conditional(dir + "/encoder.safetensors", "encoder");
  EXPECT_TRUE(same_weights(*prior, *model.prior));
  EXPECT_TRUE(same_weights(*encoder, *model.encoder));
  EXPECT_EQ(prior->spec.text(), model.prior->spec.text());
  EXPECT_EQ(encoder->spec.family, Family::kBernoulli);
  EXPECT_THROW(load_conditional(dir + "/encoder.safetensors", "outcome"), ModelError);
  EXPECT_THROW(load_prior(dir + "/encoder.safetensors", "prior"), ModelError);
  EXPECT_THROW(load_prior(dir + "/missing.safetensors", "prior"), IoError);
}

// fit --part P in five processes equals one in-process fit, bit for bit; query reports the
// truth's error; a malformed data directory is a clear error.
TEST(VbaCli, PartByPartProcessesEqualTheInProcessFit) {
  const char* cli = std::getenv("SEPTA_CLI");
  if (!cli) GTEST_SKIP() << "SEPTA_CLI not set (run through ctest)";
  const std::string dir = testing::temp_dir("vba_cli");
  const std::string septa = std::string(cli) + " nn vba ";
  auto run = [&](const std::string& args) {
    const int status = std::system((septa + args + " > " + dir + "/out.txt 2>&1").c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  ASSERT_EQ(run("generate --dims 2 --n 600 --test-n 50 --out " + dir + "/data"), 0);
  const std::string common = " --data " + dir + "/data/train --epochs 1 --finetune-epochs 1 --hidden 8";
  ASSERT_EQ(run("fit --dir " + dir + "/one" + common), 0);
  for (const char* part : {"conditional", "encoder", "outcome", "prior", "finetune"})
    ASSERT_EQ(run(std::string("fit --part ") + part + " --dir " + dir + "/many" + common), 0) << part;
  for (const char* name : {"prior", "outcome", "encoder", "conditional", "encoder_finetuned"}) {
    const std::string a = dir + "/one/" + name + ".safetensors", b = dir + "/many/" + name + ".safetensors";
    if (std::string(name) == "prior") {
      EXPECT_TRUE(same_weights(*load_prior(a, name), *load_prior(b, name)));
    } else {
      EXPECT_TRUE(same_weights(*load_conditional(a, name), *load_conditional(b, name))) << name;
    }
  }
  ASSERT_EQ(run("query --dir " + dir + "/one --data " + dir + "/data/test --k 10 --out " + dir + "/q.npy"), 0);
  EXPECT_NE(testing::read_file(dir + "/out.txt").find("MAE vs log_p_do.npy"), std::string::npos);
  const torch::Tensor q = read_matrix(dir + "/q.npy");
  EXPECT_EQ(q.sizes(), (std::vector<int64_t>{50, 3}));
  EXPECT_EQ(run("query --dir " + dir + "/one --data " + dir + "/data/test --estimator bogus"), 2);
  EXPECT_EQ(run("fit --dir " + dir + "/x --data " + dir + "/data/train --epochs 0"), 2);
  EXPECT_NE(testing::read_file(dir + "/out.txt").find("--epochs of method vba expects an integer in [1, 100000]"),
            std::string::npos);
  ASSERT_EQ(run("sample --dir " + dir + "/one --x " + dir + "/data/test/x.npy --n 3 --out " + dir + "/s.npy"), 0);
  EXPECT_EQ(read_matrix(dir + "/s.npy").sizes(), (std::vector<int64_t>{150, 2}));
  // Data of another shape than the model's.
  ASSERT_EQ(run("generate --dims 3 --n 10 --test-n 10 --out " + dir + "/other"), 0);
  EXPECT_EQ(run("query --dir " + dir + "/one --data " + dir + "/other/test"), 1);
  EXPECT_NE(testing::read_file(dir + "/out.txt").find("x has 3 and y 3 features; the model was fitted on 2 and 2"),
            std::string::npos);
}

// The reduced linear-Gaussian run: d = 5, 20,000 training rows, 500 held out, K = 100.
TEST(VbaReducedRun, LinearGaussianDimensionFiveReachesTheStatedError) {
  testing::setup_torch();
  BenchConfig config;
  config.dims = 5;
  config.n = 20000;
  config.test_n = 500;
  config.k = 100;
  config.options = {{"epochs", "5"}, {"finetune-epochs", "2"}, {"lr", "0.01"}, {"finetune-lr", "0.01"}};
  const BenchReport report = bench_linear_gaussian(config, nullptr);
  std::map<std::string, double> mae;
  for (const auto& row : report.rows) {
    mae[row.estimator] = row.mae;
    std::printf("%-34s MAE %.4f  OOD %.4f  ESS %.1f\n", row.estimator.c_str(), row.mae, row.mae_ood, row.mean_ess);
  }
  std::printf("train %.1fs, evaluation %.1fs\n", report.train_seconds, report.eval_seconds);
  // Measured 0.14 (separate 0.83, exact conditional 3.80, naive MC 2.51).
  EXPECT_LT(mae.at("vba fine-tuned"), 0.3);
  EXPECT_LT(mae.at("vba fine-tuned"), mae.at("vba separate"));
  EXPECT_LT(mae.at("vba fine-tuned"), mae.at("conditional p(y|x) exact") / 5);
  EXPECT_LT(mae.at("regression adjustment"), 0.05);
}

}  // namespace
}  // namespace septa::nn::vba
