#pragma once
// The tokenizer a GGUF model carries (tokenizer.ggml.* keys), producing the same
// token ids as llama.cpp's llama_tokenize.
//
// Supported: tokenizer.ggml.model "gpt2" (byte-level BPE) with the pre-tokenizers
// (tokenizer.ggml.pre) "gpt-2"/"mpt"/"olmo"/"jais" (GPT-2's split) and
// "smollm"/"starcoder"/"refact"/"command-r"/"codeshell"/"exaone"/"minerva-7b" (every
// digit on its own, then GPT-2's split). Anything else (SentencePiece models, other
// pre-tokenizers, a missing tokenizer.ggml.pre, which llama.cpp reads as "default"
// with a split of its own) throws lowbit::Error naming it (docs/runtime.md).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

class GgufFile;

class Tokenizer {
 public:
  // Reads the vocabulary, token types and merges from the GGUF's metadata; throws
  // Error naming the key for anything missing, malformed or unsupported.
  static Tokenizer from_gguf(const GgufFile& file);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Token ids of UTF-8 `text`. add_special: prepend BOS / append EOS where the GGUF
  // asks for them (tokenizer.ggml.add_bos_token / add_eos_token), as llama_tokenize's
  // add_special. parse_special: control tokens written in the text ("<|im_start|>")
  // become their ids instead of being tokenized as plain text (user-defined tokens
  // are always matched, as in llama.cpp).
  std::vector<int32_t> tokenize(std::string_view text, bool add_special = true, bool parse_special = false) const;

  // The bytes token `id` stands for (byte-level encoding undone); control tokens give
  // their text. Throws Error for an id outside the vocabulary.
  std::string token_to_piece(int32_t id) const;

  int32_t vocab_size() const;
  int32_t bos() const;  // -1 when the GGUF names none
  int32_t eos() const;
  bool add_bos() const;
  const std::string& model() const;          // tokenizer.ggml.model
  const std::string& pre_tokenizer() const;  // tokenizer.ggml.pre ("default" when absent)

 private:
  struct Impl;
  Tokenizer() = default;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lowbit
