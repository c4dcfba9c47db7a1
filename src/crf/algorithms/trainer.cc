#include "septa/crf/trainer.h"

#include <cstdio>
#include <utility>

#include "crf/algorithms/algorithm_table.h"
#include "crf/algorithms/linear_chain_features.h"
#include "crf/algorithms/local_training.h"
#include "crf/features/encoder.h"
#include "crf/model/model_access.h"
#include "crf/optim/huge_pages.h"
#include "septa/error.h"
#include "util/progress_line.h"

namespace septa::crf {
namespace {

// Refuses more distinct labels than --max-labels before training allocates L^2 per worker.
void check_label_count(const Encoder& encoder, const TrainOptions& options,
                       const std::string& name) {
  const std::size_t L = encoder.labels().size();
  if (L > static_cast<std::size_t>(options.max_labels))
    throw FormatError(name + ": " + std::to_string(L) + " distinct labels, more than the limit of " +
                      std::to_string(options.max_labels) + " (--max-labels raises it)");
}

TrainResult finish(Encoder encoder, const Dataset& data, const Dataset& dev,
                   const std::vector<std::vector<std::string>>& dev_gold,
                   const TrainOptions& options, const ProgressCallback& progress,
                   std::chrono::steady_clock::time_point start, const std::string& name,
                   const BlockLayout* layout = nullptr, Communicator* sgd_ranks = nullptr,
                   std::pair<std::size_t, std::size_t> own_items = {0, 0},
                   std::string names_slice = std::string(), Dataset* spread_data = nullptr) {
  std::vector<uint64_t> items{data.items()};
  if (layout) layout->comm->allreduce(items, Communicator::Op::kSum);
  if (spread_data) sgd_ranks->allreduce(items, Communicator::Op::kSum);
  if (items[0] == 0) throw FormatError(name + ": the training data has no items");
  const std::string& a = options.algorithm;
  const bool chain = a == "lbfgs" || a == "ap" || a == "pa" || a == "arow" || a == "l2sgd";
  if (has_conditioned_transitions(encoder) && !chain)
    throw OptionError("the template has observation-conditioned B lines (B..:%x[...]): --algorithm " +
                      a + " cannot use them (its factors are label bigrams); lbfgs, ap, pa, arow "
                      "and l2sgd train them");
  if (!has_transitions(encoder) && !chain)
    throw OptionError("the template has no B line (no transition features): --algorithm " + a +
                      " needs transitions; lbfgs, ap, pa, arow and l2sgd train without them");
  if (a == "separate" && options.stacked_pairs && options.pair_beam == 0.0)
    throw OptionError("option --pair-beam 0 (every label pair) needs --stacked-pairs false: the "
                      "stacked pairwise factor keeps an offset per listed pair, and without a "
                      "beam that is every pair at every position");
  if (options.c2_auto && a != "lbfgs")
    throw OptionError("option --c2 auto: only with --algorithm lbfgs");
  if (options.c2_auto && layout && layout->comm->size() > 1)
    throw OptionError("option --c2 auto: not over several MPI ranks (the dev data is on rank 0)");
  if (options.c2_auto && dev.size() == 0)
    throw OptionError("option --c2 auto needs held-out data (--dev, or X_dev/y_dev in Python)");
  std::unique_ptr<Checkpoint> checkpoint;
  if (!options.checkpoint.empty() || !options.resume.empty())
    checkpoint = std::make_unique<Checkpoint>(options);
  const AlgorithmEntry* algorithm = find_algorithm(options.algorithm);
  if (algorithm == nullptr)
    throw OptionError("option --algorithm: unknown algorithm '" + options.algorithm + "'");
  // Over several ranks training needs only the attribute count: each rank keeps its share of
  // the strings packed (rank r > 0 since the merge, rank 0 from here on, after encoding the dev
  // data), and rank 0 gathers them for the model after training.
  Communicator* ranks = layout ? layout->comm : sgd_ranks;
  const bool spread = ranks && ranks->size() > 1;
  if (spread && ranks->rank() == 0) {
    const auto [lo, hi] = name_slice(encoder.attributes().size(), 0, ranks->size());
    names_slice = encoder.attributes().pack(lo, hi);
  }
  TrainingContext context{data,   encoder, options,          dev,      dev_gold,
                          progress, start,   layout, checkpoint.get(), sgd_ranks,
                          own_items};
  context.spread_data = spread_data != nullptr;
  context.releasable_data = spread_data;
  TrainResult result;
  std::unique_ptr<Scorer> scorer;
  {
    const HugePagePool pool;  // the factors' freed huge mappings reused, unmapped at the end
    scorer = algorithm->train(context, result);
  }
  if (spread) {
    // The training buffers are free now; give their pages back before rank 0 builds the
    // strings and the model image (else they count twice in its peak resident memory).
    release_free_memory();
    std::vector<std::string> to(static_cast<std::size_t>(ranks->size()));
    to[0] = std::move(names_slice);
    const std::vector<std::string> slices = ranks->alltoall(to);
    if (ranks->rank() == 0) encoder.attributes().unpack(slices);
    profile_stage("gather names");
  }
  if (!scorer->finite())
    throw NumericalError(name + ": training produced non-finite weights (attribute values too "
                      "large in magnitude? scale them down)");
  result.features = scorer->feature_count();
  auto model = std::make_shared<ModelData>();
  model->algorithm = algorithm->name;
  model->encoder = std::move(encoder);
  model->scorer = std::move(scorer);
  result.model = ModelAccess::make(std::move(model));
  result.seconds = context.seconds();
  return result;
}

}  // namespace

std::string format_progress(const TrainProgress& p) {
  util::IterationProgress line;
  line.phase = p.phase;
  line.iteration = p.iteration;
  line.objective = p.objective;
  line.grad_norm = p.grad_norm;
  line.active_features = p.active_features;
  line.seconds = p.seconds;
  line.dev_accuracy = p.dev_accuracy;
  line.dev_f1 = p.dev_f1;
  return util::format_iteration(line);
}

namespace {

// Frees the capacity that growing by push_back left beyond the data.
void shrink(Dataset& data) {
  data.sequence_offsets.shrink_to_fit();
  data.item_offsets.shrink_to_fit();
  data.attribute_ids.shrink_to_fit();
  data.attribute_values.shrink_to_fit();
  data.labels.shrink_to_fit();
  data.weights.shrink_to_fit();
  data.edge_offsets.shrink_to_fit();
  data.edge_ids.shrink_to_fit();
}

// `consumed`, when given, is `data` itself, released once encoded (training reads the ids).
TrainResult train_columns(const std::vector<ColumnSentence>& data, const std::string& name,
                          const FeatureTemplate& feature_template, const TrainOptions& options,
                          const std::vector<ColumnSentence>& dev,
                          const ProgressCallback& progress, const std::string& dev_name,
                          const BlockLayout* layout,
                          std::vector<ColumnSentence>* consumed = nullptr) {
  const auto start = std::chrono::steady_clock::now();
  validate(options);
  limit_heap_retention();
  Encoder encoder(feature_template);
  Dataset encoded;
  profile_stage("before training");
  // -a separate and lbfgs drop the values of column data (all 1) below, unread: not written.
  const bool values = options.algorithm != "separate" && options.algorithm != "lbfgs";
  if (consumed) {
    encoder.encode_training(std::move(*consumed), encoded, options.threads, values);  // frees the text
    shrink(encoded);
  } else {
    encoder.encode_training(data, encoded, options.threads);
  }
  // The chunks' dictionaries and the text, freed in the workers' arenas: at 16 threads they
  // kept the resident size 70 MB above one thread's until the features were built.
  release_free_memory();
  profile_stage("encode");
  std::string names_slice;  // over ranks: this rank's share of the attribute strings
  if (layout) encoder.merge_across(*layout->comm, encoded, name, &names_slice);
  if (layout) profile_stage("merge");
  // SGD training over several ranks: -a separate keeps this rank's part of the encoded
  // corpus and moves each factor's instances to the ranks that train them (ShardedSgd);
  // memm takes the whole encoded corpus (ids, not text). Each rank trains its share of the
  // SGD shards.
  Communicator* sgd_ranks = nullptr;
  std::pair<std::size_t, std::size_t> own_items{0, 0};
  Dataset* spread_data = nullptr;
  if (layout && layout->comm->size() > 1 && options.algorithm != "lbfgs") {
    if (options.algorithm == "separate") {
      own_items = {0, encoded.items()};
      spread_data = &encoded;
      // Column data: every value is 1 (unit_values below), and the kernels then never read
      // the values (ItemArrays), so they go.
      std::vector<float>().swap(encoded.attribute_values);
    } else {
      encoded = gather_dataset(std::move(encoded), *layout->comm, &own_items);
    }
    encoded.unit_values = true;  // every rank's part is column data: value 1 everywhere
    sgd_ranks = layout->comm;
    layout = nullptr;
  }
  // One process, -a separate on column data: its kernels read no values (ItemArrays, as over
  // ranks above), so the 4 bytes per attribute entry go (16 MB on CoNLL-2000).
  if (!sgd_ranks && options.algorithm == "separate" && encoded.unit_values)
    std::vector<float>().swap(encoded.attribute_values);
  // Likewise lbfgs (one process or ranks): its scorer and objective read a sequence without
  // values as all 1 (SequenceView), with the same bits (CoNLL-2003 NER: 19 MB of peak memory).
  if (options.algorithm == "lbfgs" && encoded.unit_values)
    std::vector<float>().swap(encoded.attribute_values);
  check_label_count(encoder, options, name);
  Dataset dev_encoded;
  std::vector<std::vector<std::string>> dev_gold;
  for (const ColumnSentence& sentence : dev) {
    if (!encoder.has_gold_column(sentence))
      throw FormatError((sentence.source.empty() ? dev_name + ": " : std::string()) +
                        item_place(sentence, 0) + ": expected " + std::to_string(encoder.columns()) +
                        " columns with the gold label last");
    encoder.encode(sentence, dev_encoded);
    std::vector<std::string> gold;
    for (const auto& columns : sentence.columns) gold.push_back(columns.back());
    dev_gold.push_back(std::move(gold));
  }
  return finish(std::move(encoder), encoded, dev_encoded, dev_gold, options, progress, start,
                name, layout, sgd_ranks, own_items, std::move(names_slice), spread_data);
}

}  // namespace

TrainResult train(const std::vector<ColumnSentence>& data, const std::string& name,
                  const FeatureTemplate& feature_template, const TrainOptions& options,
                  const std::vector<ColumnSentence>& dev, const ProgressCallback& progress,
                  const std::string& dev_name) {
  return train_columns(data, name, feature_template, options, dev, progress, dev_name, nullptr);
}

TrainResult train(std::vector<ColumnSentence>&& data, const std::string& name,
                  const FeatureTemplate& feature_template, const TrainOptions& options,
                  const std::vector<ColumnSentence>& dev, const ProgressCallback& progress,
                  const std::string& dev_name) {
  return train_columns(data, name, feature_template, options, dev, progress, dev_name, nullptr,
                       &data);
}

TrainResult train_sharded(ColumnShard shard, const std::string& name,
                          const FeatureTemplate& feature_template, const TrainOptions& options,
                          Communicator& comm, const std::vector<ColumnSentence>& dev,
                          const ProgressCallback& progress, const std::string& dev_name) {
  const bool sgd = options.local_sgd && (options.algorithm == "separate" ||
                                         options.algorithm == "memm");
  if (comm.size() > 1 && options.algorithm != "lbfgs" && !sgd)
    throw OptionError("option --algorithm: over several MPI ranks only lbfgs, and separate or "
                      "memm with --local-optimizer sgd, are supported (got " +
                      options.algorithm + ")");
  BlockLayout layout;
  layout.comm = &comm;
  layout.bounds = shard.block_bounds;
  layout.first = shard.first_block;
  layout.total = shard.total_blocks;
  return train_columns(shard.sentences, name, feature_template, options,
                       comm.rank() == 0 ? dev : std::vector<ColumnSentence>(), progress, dev_name,
                       &layout, &shard.sentences);
}

TrainResult train(const std::vector<AttributeSequence>& data, const TrainOptions& options,
                  const std::vector<AttributeSequence>& dev, const ProgressCallback& progress,
                  const std::string& name) {
  const auto start = std::chrono::steady_clock::now();
  validate(options);
  limit_heap_retention();
  Encoder encoder;
  Dataset encoded;
  encoder.encode_training(data, encoded);
  check_label_count(encoder, options, name);
  Dataset dev_encoded;
  std::vector<std::vector<std::string>> dev_gold;
  for (const AttributeSequence& sequence : dev) {
    encoder.encode(sequence, dev_encoded);
    dev_gold.push_back(sequence.labels);
  }
  return finish(std::move(encoder), encoded, dev_encoded, dev_gold, options, progress, start, name);
}

}  // namespace septa::crf
