// septa-spm: the sentencepiece side of septa nn mt, in a process of its own.
//
// Debian's libsentencepiece carries its own protobuf-lite (3.14) and exports its symbols, while
// libtorch loads the full libprotobuf (3.21): in one process the two collide (a crash before main,
// or protobuf's version check aborting). So the translation code, which links libtorch, runs
// this small program, which links only sentencepiece, for training, encoding and decoding.
//
//   septa-spm train PREFIX VOCAB LANGUAGES INPUT   unigram model PREFIX.model, tags <2xx>
//   septa-spm encode MODEL INPUT OUTPUT            one line of text -> one line of ids
//   septa-spm decode MODEL INPUT OUTPUT            one line of ids -> one line of text
//   septa-spm info MODEL LANGUAGES                 "vocab N" then "<2xx> ID" per language
// Exit status 0 ok, 1 error (message on stderr), 2 usage.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

int fail(const std::string& message) {
  std::cerr << "septa-spm: " << message << "\n";
  return 1;
}

int train(const std::string& prefix, const std::string& vocab, const std::string& languages,
          const std::string& input) {
  std::string tags;
  for (const auto& l : split_commas(languages)) tags += (tags.empty() ? "<2" : ",<2") + l + ">";
  // One thread and no sampling of the input: the same lines give the same model.
  const std::string args = "--input=" + input + " --model_prefix=" + prefix + " --vocab_size=" + vocab +
                           " --model_type=unigram --character_coverage=0.9995 --hard_vocab_limit=false"
                           " --num_threads=1 --input_sentence_size=0 --shuffle_input_sentence=false"
                           " --unk_id=0 --pad_id=1 --eos_id=2 --bos_id=-1 --minloglevel=2"
                           " --user_defined_symbols=" + tags;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args);
  if (!status.ok()) return fail(prefix + ".model: training failed: " + status.ToString());
  return 0;
}

int load(sentencepiece::SentencePieceProcessor& sp, const std::string& model) {
  const auto status = sp.Load(model);
  if (!status.ok()) return fail(model + ": not a sentencepiece model: " + status.ToString());
  return 0;
}

int transcode(const std::string& model, const std::string& input, const std::string& output, bool encode) {
  sentencepiece::SentencePieceProcessor sp;
  if (load(sp, model)) return 1;
  std::ifstream in(input, std::ios::binary);
  if (!in) return fail(input + ": cannot open");
  std::ofstream out(output, std::ios::binary);
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (encode) {
      std::vector<int> ids;
      sp.Encode(line, &ids);
      for (size_t i = 0; i < ids.size(); ++i) out << (i ? " " : "") << ids[i];
    } else {
      std::vector<int> ids;
      std::istringstream fields(line);
      for (int id; fields >> id;) {
        if (id < 0 || id >= sp.GetPieceSize())
          return fail(input + ":" + std::to_string(number) + ": id " + std::to_string(id) + " outside the vocabulary");
        ids.push_back(id);
      }
      std::string text;
      sp.Decode(ids, &text);
      out << text;
    }
    out << '\n';
  }
  if (!out.flush()) return fail(output + ": cannot write");
  return 0;
}

int info(const std::string& model, const std::string& languages) {
  sentencepiece::SentencePieceProcessor sp;
  if (load(sp, model)) return 1;
  std::cout << "vocab " << sp.GetPieceSize() << "\n";
  for (const auto& l : split_commas(languages)) {
    const int id = sp.PieceToId("<2" + l + ">");
    if (id == sp.unk_id()) return fail(model + ": no tag <2" + l + ">");
    std::cout << "<2" << l << "> " << id << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 5 && a[0] == "train") return train(a[1], a[2], a[3], a[4]);
  if (a.size() == 4 && (a[0] == "encode" || a[0] == "decode")) return transcode(a[1], a[2], a[3], a[0] == "encode");
  if (a.size() == 3 && a[0] == "info") return info(a[1], a[2]);
  std::cerr << "usage: septa-spm train PREFIX VOCAB LANGUAGES INPUT | encode MODEL IN OUT | "
               "decode MODEL IN OUT | info MODEL LANGUAGES\n";
  return 2;
}
