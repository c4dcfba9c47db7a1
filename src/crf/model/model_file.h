// The model file's frame: magic, format version, payload size, payload, checksum64.
#pragma once

#include <cstdint>
#include <string>

namespace septa::crf {

// Wraps a model payload (algorithm, encoder, scorer fields) into a complete model file with its
// checksum. Model::to_bytes uses it; tests and the model fuzzer use it to forge payloads that
// pass the checksum and reach the payload checks.
std::string frame_model_payload(const std::string& payload, uint32_t version = 4);

}  // namespace septa::crf
