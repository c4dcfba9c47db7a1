#include "septa/crf/trainer.h"

#include <utility>

#include "crf/features/encoder.h"
#include "crf/algorithms/training_context.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

AlgorithmResult run_algorithm(const TrainingContext& context) {
  switch (context.options.algorithm) {
    case Algorithm::kLbfgs: return train_lbfgs(context);
    case Algorithm::kPiecewise: return train_piecewise(context);
    case Algorithm::kSeparate: return train_separate(context);
    case Algorithm::kSeparateCounts: return train_separate_counts(context);
    case Algorithm::kMemm: return train_memm(context);
    case Algorithm::kAveragedPerceptron: return train_ap(context);
    case Algorithm::kPassiveAggressive: return train_pa(context);
    case Algorithm::kArow: return train_arow(context);
  }
  throw OptionError("option --algorithm: unknown algorithm");
}

TrainResult finish(Encoder encoder, const Dataset& data, const Dataset& dev,
                   const std::vector<std::vector<std::string>>& dev_gold,
                   const TrainOptions& options, const ProgressCallback& progress,
                   std::chrono::steady_clock::time_point start,
                   const BlockLayout* layout = nullptr) {
  std::vector<uint64_t> items{data.items()};
  if (layout) layout->comm->allreduce(items, Communicator::Op::kSum);
  if (items[0] == 0) throw FormatError("the training data has no items");
  const Algorithm a = options.algorithm;
  if (!has_transitions(encoder) && a != Algorithm::kLbfgs && a != Algorithm::kAveragedPerceptron &&
      a != Algorithm::kPassiveAggressive && a != Algorithm::kArow)
    throw OptionError("the template has no B line (no transition features): --algorithm " +
                      algorithm_name(a) + " needs transitions; lbfgs, ap, pa and arow train "
                      "without them");
  if (options.c2_auto && options.algorithm != Algorithm::kLbfgs)
    throw OptionError("option --c2 auto: only with --algorithm lbfgs");
  if (options.c2_auto && layout && layout->comm->size() > 1)
    throw OptionError("option --c2 auto: not over several MPI ranks (the dev data is on rank 0)");
  if (options.c2_auto && dev.size() == 0)
    throw OptionError("option --c2 auto needs held-out data (--dev, or X_dev/y_dev in Python)");
  TrainingContext context{data, encoder, options, dev, dev_gold, progress, start, layout};
  AlgorithmResult trained = run_algorithm(context);
  TrainResult result;
  result.cancelled = trained.cancelled;
  result.iterations = trained.iterations;
  result.stop_reason = trained.stop_reason;
  result.kept_iteration = trained.kept_iteration;
  result.kept_metric = trained.kept_metric;
  result.kept_score = trained.kept_score;
  result.chosen_c2 = trained.chosen_c2;
  result.features = trained.scorer->feature_count();
  auto model = std::make_shared<ModelData>();
  model->algorithm = algorithm_name(options.algorithm);
  model->encoder = std::move(encoder);
  model->scorer = std::move(trained.scorer);
  result.model = Model(std::move(model));
  result.seconds = context.seconds();
  return result;
}

}  // namespace

namespace {

TrainResult train_columns(const std::vector<ColumnSentence>& data, const std::string& name,
                          const FeatureTemplate& feature_template, const TrainOptions& options,
                          const std::vector<ColumnSentence>& dev,
                          const ProgressCallback& progress, const std::string& dev_name,
                          const BlockLayout* layout) {
  const auto start = std::chrono::steady_clock::now();
  validate(options);
  Encoder encoder(feature_template);
  Dataset encoded;
  encoder.encode_training(data, name, encoded, options.threads);
  if (layout) encoder.merge_across(*layout->comm, encoded, name);
  Dataset dev_encoded;
  std::vector<std::vector<std::string>> dev_gold;
  for (const ColumnSentence& sentence : dev) {
    if (!encoder.has_gold_column(sentence))
      throw FormatError(dev_name + ":" + std::to_string(sentence.first_line) +
                        ": expected " + std::to_string(encoder.columns()) +
                        " columns with the gold label last");
    encoder.encode(sentence, dev_encoded);
    std::vector<std::string> gold;
    for (const auto& columns : sentence.columns) gold.push_back(columns.back());
    dev_gold.push_back(std::move(gold));
  }
  return finish(std::move(encoder), encoded, dev_encoded, dev_gold, options, progress, start,
                layout);
}

}  // namespace

TrainResult train(const std::vector<ColumnSentence>& data, const std::string& name,
                  const FeatureTemplate& feature_template, const TrainOptions& options,
                  const std::vector<ColumnSentence>& dev, const ProgressCallback& progress,
                  const std::string& dev_name) {
  return train_columns(data, name, feature_template, options, dev, progress, dev_name, nullptr);
}

TrainResult train_sharded(const ColumnShard& shard, const std::string& name,
                          const FeatureTemplate& feature_template, const TrainOptions& options,
                          Communicator& comm, const std::vector<ColumnSentence>& dev,
                          const ProgressCallback& progress, const std::string& dev_name) {
  if (comm.size() > 1 && options.algorithm != Algorithm::kLbfgs)
    throw OptionError("option --algorithm: only lbfgs trains over several MPI ranks (got " +
                      algorithm_name(options.algorithm) + ")");
  BlockLayout layout;
  layout.comm = &comm;
  layout.bounds = shard.block_bounds;
  layout.first = shard.first_block;
  layout.total = shard.total_blocks;
  return train_columns(shard.sentences, name, feature_template, options,
                       comm.rank() == 0 ? dev : std::vector<ColumnSentence>(), progress, dev_name,
                       &layout);
}

TrainResult train(const std::vector<AttributeSequence>& data, const TrainOptions& options,
                  const std::vector<AttributeSequence>& dev, const ProgressCallback& progress) {
  const auto start = std::chrono::steady_clock::now();
  validate(options);
  Encoder encoder;
  Dataset encoded;
  encoder.encode_training(data, encoded);
  Dataset dev_encoded;
  std::vector<std::vector<std::string>> dev_gold;
  for (const AttributeSequence& sequence : dev) {
    encoder.encode(sequence, dev_encoded);
    dev_gold.push_back(sequence.labels);
  }
  return finish(std::move(encoder), encoded, dev_encoded, dev_gold, options, progress, start);
}

}  // namespace septa::crf
