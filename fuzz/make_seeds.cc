// Writes the seed corpora of the fuzz targets into DIR/<target>/: small valid inputs of every
// format, models of every algorithm in both input formats, and a few near-misses.
#include <sys/stat.h>
#include <zlib.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "nn/data/mo.h"
#include "safetensors/safetensors.h"
#include "septa/crf/corpus.h"
#include "septa/crf/feature_template.h"
#include "septa/crf/model.h"
#include "septa/crf/options.h"
#include "septa/crf/trainer.h"

namespace {

namespace crf = septa::crf;

const char* const kColumns =
    "The DT B-NP\nbig JJ I-NP\ndog NN I-NP\nbarked VBD B-VP\n. . O\n\n"
    "-DOCSTART- -X- O\n\nA DT B-NP\ncat NN I-NP\nsat VBD B-VP\non IN B-PP\nthe DT B-NP\n"
    "mat NN I-NP\n\n";
const char* const kAttributes =
    "B-NP\tw=the\tpos=DT\tlen:3\nI-NP\tw=dog\tpos=NN\tlen:3.5\tesc\\:aped:1e-3\n\n"
    "@weight:2.5\nB-VP\tw=ran\tpos=VBD\nO\tw=.\t\n\n";
const char* const kEval =
    "The DT B-NP B-NP\ndog NN I-NP I-NP\nbarked VBD B-VP B-VP\n\n"
    "-X- -X- O O\nin IN B-PP O\nParis NNP B-LOC S-LOC\nBank NNP E-ORG B-ORG\n";

void write(const std::string& dir, const std::string& name, const std::string& bytes) {
  ::mkdir(dir.c_str(), 0755);
  std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
}

// An IDX file of `n` 3x2 images (or labels when `images` is false), big-endian header.
std::string idx_file(uint32_t n, bool images) {
  std::string out = {0, 0, 0x08, static_cast<char>(images ? 3 : 1)};
  const auto u32 = [&](uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
  };
  u32(n);
  if (images) {
    u32(3);
    u32(2);
  }
  for (uint32_t i = 0; i < n * (images ? 6 : 1); ++i) out += static_cast<char>(i * 37 % 256);
  return out;
}

// `bytes` as a gzip stream (as Debian's dataset-fashion-mnist ships IDX files).
std::string gzip(const std::string& bytes) {
  z_stream z{};
  deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, bytes.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string payload_of(const std::string& file) {
  // magic (8), version (4), payload size (8), payload, checksum (8)
  return file.substr(20, file.size() - 28);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_seeds DIR\n";
    return 2;
  }
  const std::string root = argv[1];
  ::mkdir(root.c_str(), 0755);
  const std::string crlf = [] {
    std::string s;
    for (const char* p = kColumns; *p; ++p) s += *p == '\n' ? std::string("\r\n") : std::string(1, *p);
    return s;
  }();
  write(root + "/column_reader_fuzz", "conll.txt", kColumns);
  write(root + "/column_reader_fuzz", "crlf_bom.txt", "\xEF\xBB\xBF" + crlf);
  write(root + "/column_reader_fuzz", "ragged.txt", "a b c\nd e\n");
  write(root + "/attribute_reader_fuzz", "crfsuite.txt", kAttributes);
  write(root + "/attribute_reader_fuzz", "bad_value.txt", "A\tx:1e39\nB\ty:nan\n");
  write(root + "/evaluation_fuzz", "conlleval.txt", kEval);

  const crf::FeatureTemplate chunking = crf::FeatureTemplate::default_chunking();
  write(root + "/template_fuzz", "chunking.txt", chunking.text() + std::string(1, '\0') + kColumns);
  write(root + "/template_fuzz", "macros.txt",
        std::string("U00:%x[-3,0]/%x[3,1]/lit\nU01:%x[0,2]\n# c\nB\n") + '\0' + kColumns);
  write(root + "/template_fuzz", "bad.txt", std::string("U00:%x[1]\nB01:%x[0,0]\n") + '\0' + "a b\n");

  std::istringstream columns_in(kColumns);
  const auto columns = crf::read_columns(columns_in, "seed.txt");
  std::istringstream attributes_in(kAttributes);
  const auto attributes = crf::read_attributes(attributes_in, "seed.txt");
  for (const char* algorithm : {"lbfgs", "separate", "separate-counts", "piecewise", "memm"}) {
    crf::TrainOptions options;
    crf::set_train_option(options, "algorithm", algorithm);
    options.max_iterations = 5;
    const std::string by_columns = crf::train(columns, "seed.txt", chunking, options).model.to_bytes();
    const std::string by_attributes = crf::train(attributes, options).model.to_bytes();
    write(root + "/model_fuzz", std::string(algorithm) + "_columns.model", by_columns);
    write(root + "/model_fuzz", std::string(algorithm) + "_attributes.model", by_attributes);
    write(root + "/model_payload_fuzz", std::string(algorithm) + "_columns", payload_of(by_columns));
    write(root + "/model_payload_fuzz", std::string(algorithm) + "_attributes",
          payload_of(by_attributes));
  }

  write(root + "/idx_fuzz", "images.idx", idx_file(4, true));
  write(root + "/idx_fuzz", "labels.idx", idx_file(5, false));
  write(root + "/idx_fuzz", "images.idx.gz", gzip(idx_file(3, true)));
  write(root + "/idx_fuzz", "empty.idx", idx_file(0, true));

  // gettext catalogs in both byte orders: a context, a plural entry, UTF-8 text.
  const std::vector<septa::nn::MoEntry> mo_entries = {
      {"", "_Open", "", {"\xc3\x96_ffnen"}},
      {"menu", "File", "", {"Datei"}},
      {"", "%d file", "%d files", {"%d Datei", "%d Dateien"}}};
  write(root + "/mo_fuzz", "little.mo", septa::nn::write_mo(mo_entries, false));
  write(root + "/mo_fuzz", "big.mo", septa::nn::write_mo(mo_entries, true));
  write(root + "/mo_fuzz", "empty.mo", septa::nn::write_mo({}, false, ""));

  namespace st = septa::safetensors;
  const std::string dir = root + "/safetensors_fuzz";
  ::mkdir(dir.c_str(), 0755);
  for (const bool checksum : {true, false}) {
    std::vector<st::TensorSpec> specs = {{"w", st::Dtype::kF32, {2, 3}}, {"b", st::Dtype::kF32, {3}}};
    st::WriteOptions options;
    options.checksum = checksum;
    options.sync = false;
    st::FileWriter writer(dir + (checksum ? "/checksum.safetensors" : "/plain.safetensors"), specs,
                          {{"format", "pt"}}, options);
    const float w[6] = {1, -2, 3.5f, 0, 1e-3f, -7};
    const float b[3] = {0.5f, 0.25f, -1};
    writer.write_next(w, sizeof w);
    writer.write_next(b, sizeof b);
    writer.commit();
  }
  return 0;
}
