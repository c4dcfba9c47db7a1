// One shared sentencepiece model (Kudo & Richardson 2018; Debian's libsentencepiece) over every
// language of the study, with a target-language tag "<2xx>" per language as a user-defined
// piece. Torch-free.
//
// The library runs in the helper process septa-spm (cli/spm_main.cc): Debian's libsentencepiece
// bundles a protobuf-lite whose exported symbols collide with libtorch's libprotobuf, so the two
// cannot share a process. Lines travel through temporary files, in bulk.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace septa::nn::mt {

inline constexpr int kUnkId = 0;
inline constexpr int kPadId = 1;
inline constexpr int kEosId = 2;

// The septa-spm executable: $SEPTA_SPM, else septa-spm beside the running executable.
std::string spm_helper();

// Trains a unigram model on `lines` into "<prefix>.model" with `vocab_size` pieces (a soft limit
// on small corpora), the tags of `languages`, ids unk 0, pad 1, eos 2 and no bos; one thread, so
// deterministic. FormatError with sentencepiece's message on failure.
void train_tokenizer(const std::vector<std::string>& lines, const std::vector<std::string>& languages,
                     int vocab_size, const std::string& prefix);

// The tag piece of `language`: "<2de>".
std::string language_tag(const std::string& language);

class Tokenizer {
 public:
  // Reads the vocabulary size and the tags of `languages`; ModelError naming `path` when it is not
  // a sentencepiece model or lacks a tag.
  Tokenizer(const std::string& path, const std::vector<std::string>& languages);

  std::vector<std::vector<int>> encode(const std::vector<std::string>& texts) const;
  std::vector<std::string> decode(const std::vector<std::vector<int>>& ids) const;
  // The id of `language`'s tag; ModelError when the model lacks it.
  int tag(const std::string& language) const;
  int vocab_size() const { return vocab_size_; }

 private:
  std::string path_;
  int vocab_size_ = 0;
  std::map<std::string, int> tags_;
};

}  // namespace septa::nn::mt
