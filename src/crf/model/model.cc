#include "septa/crf/model.h"

#include <cmath>
#include <cerrno>
#include <cstring>
#include <exception>
#include <fstream>
#include <string_view>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crf/algorithms/algorithm_table.h"
#include "crf/io/binary_io.h"
#include "crf/lattice/nbest.h"
#include "crf/model/model_access.h"
#include "crf/model/model_file.h"
#include "crf/scoring/scorer.h"
#include "septa/error.h"
#include "util/atomic_file.h"
#include "util/atomic_stream.h"

namespace septa::crf {
namespace {

constexpr char kMagic[8] = {'S', 'E', 'P', 'T', 'A', 'C', 'R', 'F'};
// 2: word-wise checksum; 3: separate's pair beam; 4: separate's stacked pairwise factor;
// 5: observation-conditioned transitions. Files are written with the lowest version that holds
// the model (5 only for models that use observation-conditioned B templates), so older readers
// still read every model they can use; versions 3 and 4 are still read.
constexpr uint32_t kOldestVersion = 3;
constexpr uint32_t kFormatVersion = 5;

// A log-potential that no allowed path can lose to (finite, so the lattice's shifted
// exponentials stay defined; its weight underflows to at most ~1e-308 of any allowed path).
constexpr double kForbidden = -1e30;

// Makes the forbidden transitions, first labels and the labels other than the forced ones
// impossible, on the potentials the scorer filled.
void constrain(const ModelData& data, const DecodeConstraints& c, Lattice& lattice) {
  const std::size_t T = lattice.length(), L = lattice.labels();
  if (!c.allowed_transitions.empty()) {
    SEPTA_CHECK(c.allowed_transitions.size() == L * L);
    for (std::size_t t = 1; t < T; ++t) {
      double* trans = lattice.transition(t);  // [L][L], shared or per position
      for (std::size_t q = 0; q < L * L; ++q)
        if (!c.allowed_transitions[q]) trans[q] = kForbidden;
    }
  }
  if (!c.allowed_first.empty() && T > 0) {
    SEPTA_CHECK(c.allowed_first.size() == L);
    for (std::size_t j = 0; j < L; ++j)
      if (!c.allowed_first[j]) lattice.state(0)[j] = kForbidden;
  }
  if (c.forced.empty()) return;
  if (c.forced.size() != T)
    throw FormatError("forced labels: " + std::to_string(c.forced.size()) + " for a sequence of " +
                      std::to_string(T) + " items");
  for (std::size_t t = 0; t < T; ++t) {
    if (c.forced[t].empty()) continue;
    const int32_t keep = data.encoder.labels().find(c.forced[t]);
    if (keep < 0)
      throw FormatError("item " + std::to_string(t + 1) + ": forced label '" + c.forced[t] +
                        "' is not a label of the model");
    for (std::size_t j = 0; j < L; ++j)
      if (static_cast<int32_t>(j) != keep) lattice.state(t)[j] = kForbidden;
  }
}

// The encoded sentence being tagged, one per thread, reused (no allocation once grown).
Dataset& scratch_dataset() {
  thread_local Dataset dataset;
  dataset.clear();
  return dataset;
}

TagResult decode(const ModelData& data, const Dataset& encoded, bool marginals,
                 const DecodeConstraints* constraints = nullptr) {
  TagResult result;
  const SequenceView sequence = encoded.sequence(0);
  if (sequence.T == 0) return result;
  thread_local Lattice lattice;  // reused: no allocation per sentence once grown
  thread_local std::vector<int> best;  // [T]
  best.resize(sequence.T);
  // The best labels straight from the scorer where it can (the factored models), else from a
  // filled lattice; the lattice also when marginals or constraints need it.
  const bool constrained = constraints && (!constraints->allowed_transitions.empty() ||
                                           !constraints->allowed_first.empty() ||
                                           !constraints->forced.empty());
  const bool direct = !marginals && !constrained && data.scorer->best_labels(sequence, best.data());
  if (!direct) {
    data.scorer->potentials(sequence, lattice);
    if (constrained) constrain(data, *constraints, lattice);
    lattice.viterbi(best.data());
  }
  result.labels.reserve(sequence.T);
  for (std::size_t t = 0; t < sequence.T; ++t)
    result.labels.push_back(data.encoder.labels().name(best[t]));
  if (marginals) {
    const double log_z = lattice.forward_backward();
    result.log_probability = lattice.path_score(best.data()) - log_z;
    const std::size_t L = lattice.labels();
    result.marginals.assign(sequence.T, std::vector<double>(L));
    for (std::size_t t = 0; t < sequence.T; ++t)
      for (std::size_t j = 0; j < L; ++j) result.marginals[t][j] = lattice.node_marginal(t, j);
  } else {
    result.log_probability = NAN;
  }
  return result;
}

double labelling_log_probability(const ModelData& data, const Dataset& encoded,
                                 const std::vector<std::string>& labels) {
  const SequenceView sequence = encoded.sequence(0);
  if (labels.size() != sequence.T)
    throw FormatError("the labelling has " + std::to_string(labels.size()) +
                      " labels for a sequence of " + std::to_string(sequence.T) + " items");
  if (sequence.T == 0) return 0.0;
  std::vector<int> ids(sequence.T);  // [T]
  for (std::size_t t = 0; t < sequence.T; ++t) {
    const int32_t id = data.encoder.labels().find(labels[t]);
    if (id < 0) throw FormatError("label '" + labels[t] + "' is not a label of the model");
    ids[t] = id;
  }
  Lattice lattice;
  data.scorer->potentials(sequence, lattice);
  const double log_z = lattice.forward_backward();
  return lattice.path_score(ids.data()) - log_z;
}

std::vector<TagResult> decode_nbest(const ModelData& data, const Dataset& encoded, std::size_t K,
                                    const DecodeConstraints& constraints) {
  std::vector<TagResult> out;
  const SequenceView sequence = encoded.sequence(0);
  if (sequence.T == 0) return out;
  Lattice lattice;
  data.scorer->potentials(sequence, lattice);
  constrain(data, constraints, lattice);
  const double log_z = lattice.forward_backward();
  for (const ScoredPath& path : nbest(lattice, K)) {
    TagResult result;
    for (int y : path.labels) result.labels.push_back(data.encoder.labels().name(y));
    result.log_probability = path.score - log_z;
    out.push_back(std::move(result));
  }
  return out;
}

// Reads a complete model file held in memory; `name` names it in errors; with `threads` > 1
// the attribute index and the checksum are computed on a second thread (see parse_model).
Model parse_model(const char* bytes, std::size_t size, const std::string& name, int threads = 1);
Model parse_model_bytes(const std::string& bytes, const std::string& name, int threads = 1) {
  return parse_model(bytes.data(), bytes.size(), name, threads);
}

}  // namespace

Model::Model() = default;
Model::Model(std::shared_ptr<const ModelData> data) : data_(std::move(data)) {}
Model::~Model() = default;
Model::Model(const Model&) = default;
Model& Model::operator=(const Model&) = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

const ModelData& Model::data() const {
  if (!data_) throw ModelError("the model is empty (not trained or loaded)");
  return *data_;
}

const std::string& Model::algorithm() const { return data().algorithm; }
InputFormat Model::input_format() const { return data().encoder.format(); }
const std::vector<std::string>& Model::labels() const { return data().encoder.labels().names(); }
std::size_t Model::feature_count() const { return data().scorer->feature_count(); }
std::size_t Model::columns() const { return data().encoder.columns(); }

bool Model::has_gold_column(const ColumnSentence& sentence) const {
  return data().encoder.has_gold_column(sentence);
}

TagResult Model::tag(const ColumnSentence& sentence, bool marginals) const {
  if (data().encoder.format() != InputFormat::kColumns)
    throw FormatError("the model was trained on attribute-format data; give it attribute input");
  Dataset& encoded = scratch_dataset();
  data().encoder.encode(sentence, encoded);
  return decode(data(), encoded, marginals);
}

TagResult Model::tag(const AttributeSequence& sequence, bool marginals) const {
  if (data().encoder.format() != InputFormat::kAttributes)
    throw FormatError("the model was trained on column-format data; give it column input");
  Dataset& encoded = scratch_dataset();
  data().encoder.encode(sequence, encoded);
  return decode(data(), encoded, marginals);
}

std::vector<TagResult> Model::tag_nbest(const ColumnSentence& sentence, std::size_t K,
                                        const DecodeConstraints& constraints) const {
  if (data().encoder.format() != InputFormat::kColumns)
    throw FormatError("the model was trained on attribute-format data; give it attribute input");
  Dataset& encoded = scratch_dataset();
  data().encoder.encode(sentence, encoded);
  return decode_nbest(data(), encoded, K, constraints);
}

std::vector<TagResult> Model::tag_nbest(const AttributeSequence& sequence, std::size_t K,
                                        const DecodeConstraints& constraints) const {
  if (data().encoder.format() != InputFormat::kAttributes)
    throw FormatError("the model was trained on column-format data; give it column input");
  Dataset& encoded = scratch_dataset();
  data().encoder.encode(sequence, encoded);
  return decode_nbest(data(), encoded, K, constraints);
}

double Model::log_probability(const ColumnSentence& sentence,
                              const std::vector<std::string>& labels) const {
  if (data().encoder.format() != InputFormat::kColumns)
    throw FormatError("the model was trained on attribute-format data; give it attribute input");
  Dataset& encoded = scratch_dataset();
  data().encoder.encode(sentence, encoded);
  return labelling_log_probability(data(), encoded, labels);
}

double Model::log_probability(const AttributeSequence& sequence,
                              const std::vector<std::string>& labels) const {
  if (data().encoder.format() != InputFormat::kAttributes)
    throw FormatError("the model was trained on column-format data; give it column input");
  Dataset& encoded = scratch_dataset();
  data().encoder.encode(sequence, encoded);
  return labelling_log_probability(data(), encoded, labels);
}

const std::vector<std::string>& Model::attributes() const {
  return data().encoder.attributes().names();
}

TagResult Model::tag(const ColumnSentence& sentence, bool marginals,
                     const DecodeConstraints& constraints) const {
  if (data().encoder.format() != InputFormat::kColumns)
    throw FormatError("the model was trained on attribute-format data; give it attribute input");
  Dataset& encoded = scratch_dataset();
  data().encoder.encode(sentence, encoded);
  return decode(data(), encoded, marginals, &constraints);
}

TagResult Model::tag(const AttributeSequence& sequence, bool marginals,
                     const DecodeConstraints& constraints) const {
  if (data().encoder.format() != InputFormat::kAttributes)
    throw FormatError("the model was trained on column-format data; give it column input");
  Dataset& encoded = scratch_dataset();
  data().encoder.encode(sequence, encoded);
  return decode(data(), encoded, marginals, &constraints);
}

std::vector<WeightedFeature> Model::state_features() const {
  return data().scorer->state_features(data().encoder);
}

std::vector<WeightedFeature> Model::transition_features() const {
  return data().scorer->transition_features(data().encoder);
}

std::vector<ConditionedTransition> Model::conditioned_transition_features() const {
  return data().scorer->conditioned_transition_features(data().encoder);
}

void Model::dump(std::ostream& out, std::size_t top) const {
  const ModelData& d = data();
  out << "ALGORITHM " << d.algorithm << "\n";
  out << "INPUT " << (d.encoder.format() == InputFormat::kColumns ? "columns" : "attributes")
      << "\n";
  if (d.encoder.format() == InputFormat::kColumns) {
    out << "COLUMNS " << d.encoder.columns() << "\nTEMPLATE\n" << d.encoder.feature_template().text();
    if (!d.encoder.feature_template().text().empty() &&
        d.encoder.feature_template().text().back() != '\n')
      out << "\n";
  }
  out << "LABELS " << d.encoder.labels().size() << "\n";
  for (const std::string& label : d.encoder.labels().names()) out << "  " << label << "\n";
  out << "ATTRIBUTES " << d.encoder.attributes().size() << "\n";
  out << "FEATURES " << d.scorer->feature_count() << "\n";
  d.scorer->dump(out, d.encoder, top);
}

namespace {

// The model file's payload: algorithm, encoder fields, scorer.
void write_payload(const ModelData& d, ByteWriter& out) {
  out.str(d.algorithm);
  out.u8(d.encoder.format() == InputFormat::kColumns ? 0 : 1);
  out.u64(d.encoder.columns());
  out.str(d.encoder.feature_template().text());
  out.strings(d.encoder.labels().names());
  out.strings(d.encoder.attributes().names());
  d.scorer->write(out);
}

}  // namespace

// The file (frame_model_payload's layout) written in one buffer: the payload is not copied
// into a frame afterwards, so saving holds one image of the model, not three.
std::string Model::to_bytes() const {
  const ModelData& d = data();
  ByteWriter file;
  file.bytes().append(kMagic, sizeof kMagic);
  file.u32(d.scorer->format_version());
  const std::size_t size_at = file.bytes().size();
  file.u64(0);  // the payload's size, set below
  const std::size_t begin = file.bytes().size();
  write_payload(d, file);
  const uint64_t size = file.bytes().size() - begin;
  std::memcpy(&file.bytes()[size_at], &size, sizeof size);
  file.u64(checksum64(file.bytes().data() + begin, size));
  return std::move(file.bytes());
}

std::string frame_model_payload(const std::string& payload, uint32_t version) {
  ByteWriter file;
  file.bytes().reserve(sizeof kMagic + 4 + 8 + payload.size() + 8);
  file.bytes().append(kMagic, sizeof kMagic);
  file.u32(version);
  file.u64(payload.size());
  file.bytes().append(payload);
  file.u64(checksum64(payload.data(), payload.size()));
  return std::move(file.bytes());
}

/*
 * The bytes of to_bytes(), streamed to the file in pieces of about 1 MB with the checksum
 * computed on the way, so saving holds no image of the model (a 31 MB model's image, grown by
 * appending, peaked at about 1.5 times its size). The frame stores the payload's size before
 * it: written as 0 and patched once the payload is out (a first pass that only counted the
 * bytes cost 5 ms of a 31 MB model's 30 ms save).
 */
void Model::save(const std::string& path) const {
  write_file_atomically_patched(path, [&](const ByteSink& out, const BytePatch& patch) {
    ByteWriter head;
    head.bytes().append(kMagic, sizeof kMagic);
    head.u32(data().scorer->format_version());
    const std::size_t size_at = head.bytes().size();
    head.u64(0);  // the payload's size, patched below
    out(head.bytes().data(), head.bytes().size());
    Checksum64 sum;
    ByteWriter payload([&](const char* bytes, std::size_t n) {
      sum.update(bytes, n);
      out(bytes, n);
    });
    write_payload(data(), payload);
    payload.flush();
    const uint64_t size = payload.size();
    const uint64_t checksum = sum.value();
    out(reinterpret_cast<const char*>(&checksum), sizeof checksum);
    patch(size_at, reinterpret_cast<const char*>(&size), sizeof size);
  });
}

Model Model::from_bytes(const std::string& bytes, const std::string& name) {
  return parse_model(bytes.data(), bytes.size(), name);
}

namespace {

/*
 * With threads > 1, a helper builds the attribute index and then checks the checksum while the
 * caller reads the weights (a 31 MB separate-counts model: about 4 + 2 ms of the helper's against
 * about 10 ms of the caller's). The errors keep the one-thread order: a checksum mismatch
 * before anything the parse found, a repeated attribute name before an error in the weights.
 */
Model parse_model(const char* bytes_data, std::size_t bytes_size, const std::string& name,
                  int threads) {
  const std::string_view bytes(bytes_data, bytes_size);
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    throw ModelError(name + ": not a septa model file (bad magic)");
  ByteReader header(bytes.data() + sizeof kMagic, bytes.size() - sizeof kMagic, name);
  const uint32_t version = header.u32();
  if (version < kOldestVersion || version > kFormatVersion)
    throw ModelError(name + ": model format version " + std::to_string(version) +
                     " is not supported (this septa reads versions " +
                     std::to_string(kOldestVersion) + " to " + std::to_string(kFormatVersion) +
                     ")");
  const uint64_t payload_size = header.u64();
  const std::size_t payload_offset = sizeof kMagic + 4 + 8;
  if (payload_size > bytes.size() - payload_offset ||
      bytes.size() - payload_offset - payload_size != 8)
    throw ModelError(name + ": truncated or extended model file (size does not match header)");
  const char* payload = bytes.data() + payload_offset;
  uint64_t stored = 0;
  std::memcpy(&stored, payload + payload_size, 8);
  const auto checksum_error = [&] {
    return ModelError(name + ": corrupt model file (checksum mismatch)");
  };
  const bool overlap = threads > 1;
  if (!overlap && stored != checksum64(payload, payload_size)) throw checksum_error();

  ByteReader in(payload, payload_size, name);
  in.set_version(version);
  auto data = std::make_shared<ModelData>();
  std::vector<std::string_view> attributes;  // the names, while the helper indexes them
  Dictionary index;                          // the helper's attribute index
  bool distinct = true, checksum_ok = true;  // the helper's findings
  std::exception_ptr helper_error;
  std::thread helper;
  const auto join = [&] {
    if (helper.joinable()) helper.join();
  };
  try {
    data->algorithm = in.str();
    const uint8_t format = in.u8();
    if (format > 1) in.fail("unknown input format");
    const uint64_t columns = in.dimension();
    const std::string template_text = in.str();
    try {
      data->encoder = Encoder::restore(
          format == 0 ? InputFormat::kColumns : InputFormat::kAttributes, template_text, columns);
    } catch (const FormatError& e) {
      in.fail(std::string("bad template: ") + e.what());
    }
    // Column models need the label column past every column the template reads; attribute
    // models have no columns.
    if (format == 0
            ? static_cast<long>(columns) <= data->encoder.feature_template().max_column() + 1
            : columns != 0)
      in.fail("column count " + std::to_string(columns) + " does not fit the template");
    for (const std::string& label : in.strings()) data->encoder.labels().add(label);
    attributes = in.string_views();
    if (overlap) {
      helper = std::thread([&] {
        try {
          distinct = index.assign_distinct_pooled(attributes.size(),
                                                  [&](std::size_t i) { return attributes[i]; });
          checksum_ok = stored == checksum64(payload, payload_size);
        } catch (...) {
          helper_error = std::current_exception();
        }
      });
    } else if (!data->encoder.attributes().assign_distinct_pooled(
                   attributes.size(), [&](std::size_t i) { return attributes[i]; })) {
      in.fail("an attribute name occurs twice");
    }
    data->scorer = read_scorer(data->algorithm, in);
    // Observation-conditioned B templates need a scorer that reads their edge features; a file
    // whose template has them but whose algorithm cannot use them is refused here.
    const bool conditioned = format == 0 &&
                             data->encoder.feature_template().conditioned_bigram_count() > 0;
    if (conditioned && !data->scorer->conditioned_transitions())
      in.fail("the template has observation-conditioned B lines but the '" + data->algorithm +
              "' weights (format version " + std::to_string(version) +
              ") cannot use them; lbfgs, ap, pa, arow and l2sgd models can");
    if (!conditioned && data->scorer->conditioned_transitions())
      in.fail("conditioned transition weights without an observation-conditioned B template");
  } catch (...) {
    if (!overlap) throw;
    const bool started = helper.joinable();
    join();
    if (started ? helper_error == nullptr && !checksum_ok
                : stored != checksum64(payload, payload_size))
      throw checksum_error();
    if (started && helper_error == nullptr && !distinct) in.fail("an attribute name occurs twice");
    throw;
  }
  if (overlap) {
    join();
    if (helper_error) std::rethrow_exception(helper_error);
    if (!checksum_ok) throw checksum_error();
    if (!distinct) in.fail("an attribute name occurs twice");
    data->encoder.attributes() = std::move(index);
  }
  if (!data->scorer->fits(data->encoder.attributes().size(), data->encoder.labels().size()))
    in.fail("weights do not match the attribute and label lists");
  if (!in.at_end()) in.fail("trailing bytes after the weights");
  return ModelAccess::make(std::move(data));
}

// Unmaps a file mapping when it goes out of scope.
struct Mapping {
  void* address = MAP_FAILED;
  std::size_t size = 0;
  ~Mapping() {
    if (address != MAP_FAILED) munmap(address, size);
  }
};

// Reads a model that is not a regular file (a device, a pipe) as a stream.
Model load_stream(const std::string& path, std::size_t max_bytes, int threads) {
  // The magic first, so that a huge foreign file (/dev/zero) is refused without reading it.
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError(path + ": cannot open: " + std::strerror(errno));
    char magic[sizeof kMagic] = {};
    in.read(magic, sizeof magic);
    if (in.gcount() != sizeof magic || std::memcmp(magic, kMagic, sizeof kMagic) != 0)
      throw ModelError(path + ": not a septa model file (bad magic)");
  }
  return parse_model_bytes(read_file(path, max_bytes, "--max-model-bytes"), path, threads);
}

// Closes a file descriptor when it goes out of scope.
struct Descriptor {
  int fd = -1;
  ~Descriptor() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

/*
 * A regular file is mapped (read-only, prefaulted) and parsed in place: no copy of the file into
 * a growing buffer, whose zero-filling, reallocations and page faults cost about as much as
 * parsing a 30 MB model. Anything else (a pipe, a device) is read as a stream.
 */
Model Model::load(const std::string& path, std::size_t max_bytes, int threads) {
  Descriptor file;
  file.fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file.fd < 0) throw IoError(path + ": cannot open: " + std::strerror(errno));
  struct stat info {};
  if (fstat(file.fd, &info) != 0 || !S_ISREG(info.st_mode))
    return load_stream(path, max_bytes, threads);
  // The magic first, so that a huge foreign file is refused without reading it.
  char magic[sizeof kMagic] = {};
  std::size_t got = 0;
  while (got < sizeof magic) {
    const ssize_t n = pread(file.fd, magic + got, sizeof magic - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw IoError(path + ": read failed: " + std::strerror(errno));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got != sizeof magic || std::memcmp(magic, kMagic, sizeof kMagic) != 0)
    throw ModelError(path + ": not a septa model file (bad magic)");
  const auto size = static_cast<std::size_t>(info.st_size);
  if (size > max_bytes)
    throw FormatError(path + ": larger than " + std::to_string(max_bytes) +
                      " bytes, the limit (--max-model-bytes raises it)");
  Mapping mapping;
  mapping.size = size;
  mapping.address = mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, file.fd, 0);
  if (mapping.address == MAP_FAILED) return load_stream(path, max_bytes, threads);
  return parse_model(static_cast<const char*>(mapping.address), size, path, threads);
}

}  // namespace septa::crf
