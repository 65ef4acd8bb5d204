// GPT-2 style byte-level BPE as llama.cpp runs it (llama-vocab.cpp, unicode.cpp): the
// same special-token partition, the same pre-tokenizer splits (its hand-written GPT-2
// splitter, whose edge cases differ from a regex engine's at piece boundaries), the
// same merge order (lowest rank first, leftmost on ties) and the same byte fallback.
#include "lowbit/model/tokenizer.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <iterator>
#include <string>
#include <unordered_map>
#include <utility>

#include "lowbit/core/error.hpp"
#include "lowbit/io/gguf.hpp"

namespace lowbit {
namespace {

struct CodepointRange {
  uint32_t first, last;
};
#include "unicode_ranges.inc"

template <size_t N>
bool in_ranges(const CodepointRange (&ranges)[N], uint32_t cp) {
  auto it = std::upper_bound(std::begin(ranges), std::end(ranges), cp,
                             [](uint32_t c, const CodepointRange& r) { return c < r.first; });
  return it != std::begin(ranges) && cp <= std::prev(it)->last;
}

bool is_letter(uint32_t cp) { return in_ranges(kLetterRanges, cp); }
bool is_number(uint32_t cp) { return in_ranges(kNumberRanges, cp); }
// llama.cpp's whitespace set (unicode.cpp), not the Unicode property: it leaves out
// U+001C..U+001F, which Python's str.isspace includes.
bool is_whitespace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

// Invalid UTF-8 becomes U+FFFD one byte at a time, as llama.cpp's unicode_cpts_from_utf8.
std::vector<uint32_t> decode_utf8(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t i = 0;
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  while (i < s.size()) {
    const uint8_t b = byte(i);
    int len = 0;
    uint32_t cp = 0;
    if (b < 0x80) {
      len = 1, cp = b;
    } else if ((b & 0xE0) == 0xC0) {
      len = 2, cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3, cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4, cp = b & 0x07;
    }
    bool ok = len > 0 && i + static_cast<size_t>(len) <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      if ((byte(i + k) & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (byte(i + k) & 0x3F);
    }
    if (ok) {
      out.push_back(cp);
      i += static_cast<size_t>(len);
    } else {
      out.push_back(0xFFFD);
      ++i;
    }
  }
  return out;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others for
// U+0100 onwards in byte order.
std::array<uint32_t, 256> byte_to_codepoint() {
  std::array<uint32_t, 256> map{};
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    map[b] = printable ? b : next++;
  }
  return map;
}

// Piece lengths (in code points) of llama.cpp's unicode_regex_split_custom_gpt2 for
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ over
// cps[begin, end): nothing is looked at outside the piece.
void split_gpt2(const std::vector<uint32_t>& cps, size_t begin, size_t end, std::vector<size_t>& out) {
  constexpr uint32_t kOut = 0xFFFFFFFF;
  struct Flags {
    bool in = false, letter = false, number = false, space = false;
  };
  const auto cpt = [&](size_t p) { return p >= begin && p < end ? cps[p] : kOut; };
  const auto flags = [&](size_t p) {
    Flags f;
    if (p < begin || p >= end) return f;
    f.in = true;
    f.letter = is_letter(cps[p]);
    f.number = is_number(cps[p]);
    f.space = is_whitespace(cps[p]);
    return f;
  };
  size_t prev = begin;
  const auto add = [&](size_t stop) {
    const size_t len = stop - prev;
    if (len > 0) out.push_back(len);
    prev = stop;
    return len;
  };
  for (size_t pos = begin; pos < end;) {
    const uint32_t c = cpt(pos);
    if (c == '\'' && pos + 1 < end) {
      const uint32_t n1 = cpt(pos + 1);
      if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') {
        pos += add(pos + 2);
        continue;
      }
      if (pos + 2 < end) {
        const uint32_t n2 = cpt(pos + 2);
        if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) {
          pos += add(pos + 3);
          continue;
        }
      }
    }
    Flags f2 = c == ' ' ? flags(pos + 1) : flags(pos);
    if (f2.letter) {
      pos += c == ' ';
      while (f2.letter) f2 = flags(++pos);
      add(pos);
      continue;
    }
    if (f2.number) {
      pos += c == ' ';
      while (f2.number) f2 = flags(++pos);
      add(pos);
      continue;
    }
    if (!(f2.space || f2.letter || f2.number) && f2.in) {
      pos += c == ' ';
      while (!(f2.space || f2.letter || f2.number) && f2.in) f2 = flags(++pos);
      add(pos);
      continue;
    }
    size_t spaces = 0;
    while (flags(pos + spaces).space) ++spaces;
    if (spaces > 1 && cpt(pos + spaces) != kOut) {
      pos += spaces - 1;
      add(pos);
      continue;
    }
    if (spaces > 0) {
      pos += spaces;
      add(pos);
      continue;
    }
    add(++pos);
  }
}

enum class PreSplit { gpt2, digits_then_gpt2 };

// llama.cpp's token types (tokenizer.ggml.token_type).
enum TokenType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

}  // namespace

struct Tokenizer::Impl {
  std::string model, pre;
  PreSplit split = PreSplit::gpt2;
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::unordered_map<std::string, int32_t> token_to_id;
  std::unordered_map<std::string, int32_t> merge_rank;  // "left right" -> rank
  std::vector<int32_t> special;                         // longest text first
  std::array<uint32_t, 256> byte_cp{};
  std::unordered_map<uint32_t, uint8_t> cp_byte;
  int32_t bos = -1, eos = -1;
  bool add_bos = false, add_eos = false;

  int32_t find(const std::string& s) const {
    auto it = token_to_id.find(s);
    return it == token_to_id.end() ? -1 : it->second;
  }
  int rank(const std::string& left, const std::string& right) const {
    auto it = merge_rank.find(left + ' ' + right);
    return it == merge_rank.end() ? -1 : it->second;
  }

  void bpe_word(const std::string& word, std::vector<int32_t>& out) const {
    // Symbols are UTF-8 characters of the byte-encoded word.
    std::vector<std::string> sym;
    for (size_t i = 0; i < word.size();) {
      const auto b = static_cast<uint8_t>(word[i]);
      size_t len = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 1;
      len = std::min(len, word.size() - i);
      sym.push_back(word.substr(i, len));
      i += len;
    }
    for (;;) {
      int best = INT_MAX;
      size_t at = 0;
      for (size_t i = 0; i + 1 < sym.size(); ++i) {
        const int r = rank(sym[i], sym[i + 1]);
        if (r >= 0 && r < best) best = r, at = i;
      }
      if (best == INT_MAX) break;
      sym[at] += sym[at + 1];
      sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(at) + 1);
    }
    for (const std::string& s : sym) {
      const int32_t id = find(s);
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      // As llama.cpp: a symbol outside the vocabulary falls back to its single bytes.
      for (char ch : s) {
        const int32_t b = find(std::string(1, ch));
        if (b >= 0) out.push_back(b);
      }
    }
  }

  void encode_text(std::string_view text, std::vector<int32_t>& out) const {
    const std::vector<uint32_t> cps = decode_utf8(text);
    std::vector<std::pair<size_t, size_t>> pieces;  // [begin, end) in code points
    if (split == PreSplit::digits_then_gpt2) {
      size_t start = 0;
      for (size_t i = 0; i < cps.size(); ++i) {
        if (!is_number(cps[i])) continue;
        if (i > start) pieces.emplace_back(start, i);
        pieces.emplace_back(i, i + 1);
        start = i + 1;
      }
      if (start < cps.size()) pieces.emplace_back(start, cps.size());
    } else if (!cps.empty()) {
      pieces.emplace_back(0, cps.size());
    }
    std::vector<size_t> lens;
    for (auto [b, e] : pieces) split_gpt2(cps, b, e, lens);
    size_t pos = 0;
    for (size_t len : lens) {
      std::string word;
      for (size_t i = pos; i < pos + len; ++i) {
        std::string utf8;
        append_utf8(utf8, cps[i]);
        for (char ch : utf8) append_utf8(word, byte_cp[static_cast<uint8_t>(ch)]);
      }
      pos += len;
      bpe_word(word, out);
    }
  }
};

Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_gguf(const GgufFile& file) {
  const std::string where = file.path().string() + ": ";
  auto impl = std::make_unique<Impl>();
  const GgufValue* model = file.find("tokenizer.ggml.model");
  if (model == nullptr || !model->is<std::string>())
    throw Error(where + "no tokenizer: tokenizer.ggml.model is missing or not a string");
  impl->model = model->as_string();
  const GgufValue* pre = file.find("tokenizer.ggml.pre");
  impl->pre = pre != nullptr && pre->is<std::string>() ? pre->as_string() : "default";
  if (impl->model != "gpt2")
    throw Error(where + "tokenizer model '" + impl->model +
                "' is not supported (lowbit reads byte-level BPE, tokenizer.ggml.model = gpt2)");
  const std::string& p = impl->pre;
  if (p == "gpt-2" || p == "mpt" || p == "olmo" || p == "jais") {
    impl->split = PreSplit::gpt2;
  } else if (p == "smollm" || p == "starcoder" || p == "refact" || p == "command-r" || p == "codeshell" ||
             p == "exaone" || p == "minerva-7b") {
    impl->split = PreSplit::digits_then_gpt2;
  } else {
    throw Error(where + "pre-tokenizer '" + p + "' (tokenizer.ggml.pre) is not supported");
  }

  const auto strings = [&](const char* key, bool required) {
    std::vector<std::string> out;
    const GgufValue* v = file.find(key);
    if (v == nullptr) {
      if (required) throw Error(where + "tokenizer key " + std::string(key) + " is missing");
      return out;
    }
    if (!v->is<GgufArray>() || v->as_array().element_type != GgufType::string)
      throw Error(where + std::string(key) + " is not an array of strings");
    for (const GgufValue& s : v->as_array().items) out.push_back(s.as_string());
    return out;
  };
  impl->tokens = strings("tokenizer.ggml.tokens", true);
  if (impl->tokens.empty() || impl->tokens.size() > static_cast<size_t>(INT32_MAX))
    throw Error(where + "tokenizer.ggml.tokens has " + std::to_string(impl->tokens.size()) + " entries");
  const auto n = static_cast<int32_t>(impl->tokens.size());
  impl->types.assign(impl->tokens.size(), kNormal);
  if (const GgufValue* t = file.find("tokenizer.ggml.token_type")) {
    if (!t->is<GgufArray>() || t->as_array().items.size() != impl->tokens.size())
      throw Error(where + "tokenizer.ggml.token_type is not an array of " + std::to_string(n) + " integers");
    for (size_t i = 0; i < impl->tokens.size(); ++i)
      impl->types[i] = static_cast<int32_t>(t->as_array().items[i].as_int());
  }
  for (int32_t i = 0; i < n; ++i) impl->token_to_id[impl->tokens[static_cast<size_t>(i)]] = i;
  const std::vector<std::string> merges = strings("tokenizer.ggml.merges", true);
  for (size_t r = 0; r < merges.size(); ++r) {
    const std::string& m = merges[r];
    if (m.find(' ', 1) == std::string::npos)
      throw Error(where + "tokenizer.ggml.merges[" + std::to_string(r) + "] = '" + m + "' has no space");
    impl->merge_rank.emplace(m, static_cast<int>(r));
  }
  const auto id_key = [&](const char* key) -> int32_t {
    const GgufValue* v = file.find(key);
    if (v == nullptr) return -1;
    const int64_t id = v->as_int();
    if (id < 0 || id >= n) throw Error(where + std::string(key) + " = " + std::to_string(id) + " is outside the vocabulary");
    return static_cast<int32_t>(id);
  };
  impl->bos = id_key("tokenizer.ggml.bos_token_id");
  impl->eos = id_key("tokenizer.ggml.eos_token_id");
  if (const GgufValue* v = file.find("tokenizer.ggml.add_bos_token")) impl->add_bos = v->get<bool>();
  if (const GgufValue* v = file.find("tokenizer.ggml.add_eos_token")) impl->add_eos = v->get<bool>();
  for (int32_t i = 0; i < n; ++i) {
    const int32_t t = impl->types[static_cast<size_t>(i)];
    if ((t == kControl || t == kUserDefined || t == kUnknown) && !impl->tokens[static_cast<size_t>(i)].empty())
      impl->special.push_back(i);
  }
  // Longest first, as llama.cpp's cache_special_tokens (ties: lower id first).
  std::stable_sort(impl->special.begin(), impl->special.end(), [&](int32_t a, int32_t b) {
    return impl->tokens[static_cast<size_t>(a)].size() > impl->tokens[static_cast<size_t>(b)].size();
  });
  impl->byte_cp = byte_to_codepoint();
  for (uint32_t b = 0; b < 256; ++b) impl->cp_byte[impl->byte_cp[b]] = static_cast<uint8_t>(b);
  Tokenizer tok;
  tok.impl_ = std::move(impl);
  return tok;
}

std::vector<int32_t> Tokenizer::tokenize(std::string_view text, bool add_special, bool parse_special) const {
  const Impl& m = *impl_;
  // Fragments: raw text (id -1) or a special token matched in the text.
  struct Fragment {
    int32_t id;
    std::string_view text;
  };
  std::vector<Fragment> frags{{-1, text}};
  for (int32_t sid : m.special) {
    const int32_t type = m.types[static_cast<size_t>(sid)];
    if (!parse_special && (type == kControl || type == kUnknown)) continue;
    const std::string& st = m.tokens[static_cast<size_t>(sid)];
    std::vector<Fragment> next;
    for (const Fragment& f : frags) {
      if (f.id >= 0) {
        next.push_back(f);
        continue;
      }
      std::string_view rest = f.text;
      for (size_t at; (at = rest.find(st)) != std::string_view::npos;) {
        if (at > 0) next.push_back({-1, rest.substr(0, at)});
        next.push_back({sid, {}});
        rest.remove_prefix(at + st.size());
      }
      if (!rest.empty()) next.push_back({-1, rest});
    }
    frags = std::move(next);
  }
  std::vector<int32_t> out;
  if (add_special && m.add_bos && m.bos >= 0) out.push_back(m.bos);
  for (const Fragment& f : frags) {
    if (f.id >= 0)
      out.push_back(f.id);
    else
      m.encode_text(f.text, out);
  }
  if (add_special && m.add_eos && m.eos >= 0) out.push_back(m.eos);
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(vocab_size()));
  const std::string& t = impl_->tokens[static_cast<size_t>(id)];
  const int32_t type = impl_->types[static_cast<size_t>(id)];
  if (type == kControl || type == kUserDefined || type == kUnknown) return t;
  std::string out;
  for (uint32_t cp : decode_utf8(t)) {
    auto it = impl_->cp_byte.find(cp);
    if (it != impl_->cp_byte.end())
      out += static_cast<char>(it->second);
    else
      append_utf8(out, cp);
  }
  return out;
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->tokens.size()); }
int32_t Tokenizer::bos() const { return impl_->bos; }
int32_t Tokenizer::eos() const { return impl_->eos; }
bool Tokenizer::add_bos() const { return impl_->add_bos; }
const std::string& Tokenizer::model() const { return impl_->model; }
const std::string& Tokenizer::pre_tokenizer() const { return impl_->pre; }

}  // namespace lowbit
