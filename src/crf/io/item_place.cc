#include <string>

#include "septa/crf/corpus.h"

namespace septa::crf {
namespace {

std::string place(const std::string& source, std::size_t first_line, std::size_t index,
                  std::size_t t) {
  if (first_line > 0)
    return (source.empty() ? std::string("line ") : source + ":") + std::to_string(first_line + t);
  if (!source.empty())
    return source + "[" + std::to_string(index) + "][" + std::to_string(t) + "]";
  return "sequence " + std::to_string(index) + ", item " + std::to_string(t);
}

}  // namespace

std::string item_place(const ColumnSentence& sentence, std::size_t t) {
  return place(sentence.source, sentence.first_line, sentence.index, t);
}

std::string item_place(const AttributeSequence& sequence, std::size_t t) {
  return place(sequence.source, sequence.first_line, sequence.index, t);
}

}  // namespace septa::crf
