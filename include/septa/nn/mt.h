// septa::nn::mt: multilingual translation on Debian's translation catalogs, trained per
// direction, per language group and all together, and merged group-wise (direction-aware
// training and merging, Zheng et al. 2025). What `septa nn mt ...` calls.
//
// The study lives in one directory:
//   spm.model                   the shared sentencepiece model
//   options.txt                 the run's options (a resumed run must give the same)
//   models/<name>.safetensors   pretrain (the base), multi, sep.<src>-<tgt>, group<g>, dat.en-g<g>
//   merged/<method>.g<g>/       X->En experts of group g merged with septa merge's core
//   results.tsv                 setting, direction, chrF, BLEU per evaluated pair
//   analysis.md, deltas.dat, deltas.png   the analysis
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "septa/nn/nn.h"

namespace septa::nn::mt {

struct CorpusRequest {
  std::string out_dir;
  std::string groups = "de,fr,es;ru;ja,zh_CN";
  std::string locale_dir = "/usr/share/locale";
  std::string dpkg_dir = "/var/lib/dpkg";
  double dev_fraction = 0.05;
  double test_fraction = 0.10;
  int64_t max_per_package = 300;  // dev / test messages kept per source package (0: all)
  uint64_t seed = 1;
};

// Builds the corpus (see src/nn/methods/mt/corpus.h); `log` gets progress and per-language
// pair counts. Returns the stats table as text.
std::string build_corpus(const CorpusRequest& request, const std::function<void(const std::string&)>& log);

// The options of train / merge / eval (model size, epochs, rates, limits, decoding, merging),
// declared once: help, validation and the saved options.txt come from this table.
const MethodInfo& study_options();

struct StudyConfig {
  std::string corpus_dir;
  std::string dir;              // the study directory
  OptionValues options;         // validated against study_options()
  std::string device = "auto";  // auto | cpu | cuda
  int threads = 1;
  bool resume = false;          // continue an interrupted train
  std::string tokenizer;        // a trained spm model to use instead of training one ("": train)
  // train --part I/N (parts N > 0): I = 0 trains the tokenizer and the base only; I = 1..N the
  // post-trained models of part I (balanced by direction counts), from the base, so N processes
  // can post-train side by side. parts 0: everything (the default).
  int part = 0, parts = 0;
};

// Trains the study's shared sentencepiece model on the training pairs of the corpus (each
// language's --max-train subset, --vocab pieces, the tags of every language) into
// `model_path` (which must end in ".model"), the same model `train` would train. For a study
// run elsewhere (`StudyConfig::tokenizer`), e.g. on a machine without sentencepiece's tools.
void train_tokenizer(const std::string& corpus_dir, const OptionValues& options, const std::string& model_path,
                     const std::function<void(const std::string&)>& log);

// Trains the tokenizer (or copies StudyConfig::tokenizer to spm.model) and the base model on all directions, then every post-trained model
// (multilingual, separate, group-wise, DAT's En->X group models). Finished models are kept and
// skipped on --resume; an interrupted model continues from its last epoch. False when stopped
// by `progress`. With config.parts > 0 only part config.part of that work (StudyConfig::part).
// Every model is trained from its own seeded generator, so a model does not depend on which
// part or process trains it (only on the options and the thread count).
bool train(const StudyConfig& config, const ProgressCallback& progress);

// Merges the X->En experts of every group with TIES, linear averaging and task arithmetic into
// merged/<method>.g<g>/ (septa::merge::run_merge, the core of `septa merge`). Writes the
// equivalent `septa merge` configs as merged/<method>.g<g>.yaml.
void merge(const StudyConfig& config, const std::function<void(const std::string&)>& log);

// Decodes the n-way test set in every direction with every setting's model and writes
// results.tsv; returns its rows as text.
std::string evaluate(const StudyConfig& config, const std::function<void(const std::string&)>& log);

// Reads results.tsv (and the model sizes) and writes analysis.md, deltas.dat and, when gnuplot
// is installed, deltas.png; returns analysis.md's text.
std::string analyse(const std::string& dir);

}  // namespace septa::nn::mt
