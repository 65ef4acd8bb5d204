// The C API: GGUF reading (a mapped, validated file) and writing (include/lowbit/lowbit.h).
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "c_api/c_api.hpp"
#include "lowbit/formats/quantize.hpp"
#include "lowbit/io/gguf.hpp"

struct lowbit_gguf {
  lowbit::GgufFile file;
};

struct lowbit_gguf_writer {
  lowbit::GgufWriter writer;
};

using namespace lowbit;
using namespace lowbit_capi;

namespace {

const GgufTensorInfo& tensor_at(const lowbit_gguf* f, size_t index) {
  require(f, "file");
  const auto tensors = f->file.tensors();
  if (index >= tensors.size())
    fail(LOWBIT_ERROR_NOT_FOUND, "tensor index " + std::to_string(index) + " is out of range (" +
                                     std::to_string(tensors.size()) + " tensors)");
  return tensors[index];
}

const GgufKeyValue& kv_at(const lowbit_gguf* f, size_t index) {
  require(f, "file");
  const auto md = f->file.metadata();
  if (index >= md.size())
    fail(LOWBIT_ERROR_NOT_FOUND, "metadata index " + std::to_string(index) + " is out of range (" +
                                     std::to_string(md.size()) + " keys)");
  return md[index];
}

[[noreturn]] void mismatch(const std::string& what, GgufType have, const char* wanted) {
  fail(LOWBIT_ERROR_TYPE_MISMATCH, what + " is a " + gguf_type_name(have) + ", not " + wanted);
}

// A value as int64: integer types (a uint64 above INT64_MAX refused) and bool.
int64_t value_int(const GgufValue& v, const std::string& what) {
  return std::visit(
      [&](const auto& x) -> int64_t {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) {
          return x ? 1 : 0;
        } else if constexpr (std::is_integral_v<T>) {
          if constexpr (std::is_same_v<T, uint64_t>)
            if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
              fail(LOWBIT_ERROR_TYPE_MISMATCH,
                   what + " = " + std::to_string(x) + " does not fit int64 (read it with lowbit_gguf_get_uint)");
          return static_cast<int64_t>(x);
        } else {
          mismatch(what, v.type(), "an integer");
        }
      },
      v.storage());
}

double value_float(const GgufValue& v, const std::string& what) {
  if (const auto* f = std::get_if<float>(&v.storage())) return *f;
  if (const auto* d = std::get_if<double>(&v.storage())) return *d;
  mismatch(what, v.type(), "a float32 or float64");
}

const std::string& value_string(const GgufValue& v, const std::string& what) {
  if (const auto* s = std::get_if<std::string>(&v.storage())) return *s;
  mismatch(what, v.type(), "a string");
}

const GgufArray& value_array(const GgufValue& v, const std::string& what) {
  if (const auto* a = std::get_if<GgufArray>(&v.storage())) return *a;
  mismatch(what, v.type(), "an array");
}

const GgufValue& array_item(const lowbit_gguf* f, size_t index, size_t item, std::string& what) {
  const GgufKeyValue& kv = kv_at(f, index);
  what = "'" + kv.key + "'";
  const GgufArray& a = value_array(kv.value, what);
  if (item >= a.items.size())
    fail(LOWBIT_ERROR_NOT_FOUND, what + ": item " + std::to_string(item) + " is out of range (" +
                                     std::to_string(a.items.size()) + " items)");
  what += '[';
  what += std::to_string(item);
  what += ']';
  return a.items[item];
}

GgufWriter& writer_of(lowbit_gguf_writer* w) { return require(w, "writer")->writer; }

std::string key_of(const char* key) {
  require(key, "key");
  if (*key == '\0') fail(LOWBIT_ERROR_INVALID_ARGUMENT, "key is empty");
  return key;
}

template <class T>
GgufValue ranged(int64_t v, const std::string& key) {
  if (v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
      (v > 0 && static_cast<uint64_t>(v) > static_cast<uint64_t>(std::numeric_limits<T>::max())))
    fail(LOWBIT_ERROR_INVALID_ARGUMENT, "'" + key + "': value " + std::to_string(v) + " does not fit a " +
                                            gguf_type_name(GgufValue(T{}).type()));
  return GgufValue(static_cast<T>(v));
}

GgufValue int_value(int type, int64_t v, const std::string& key) {
  switch (type) {
    case LOWBIT_GGUF_UINT8: return ranged<uint8_t>(v, key);
    case LOWBIT_GGUF_INT8: return ranged<int8_t>(v, key);
    case LOWBIT_GGUF_UINT16: return ranged<uint16_t>(v, key);
    case LOWBIT_GGUF_INT16: return ranged<int16_t>(v, key);
    case LOWBIT_GGUF_UINT32: return ranged<uint32_t>(v, key);
    case LOWBIT_GGUF_INT32: return ranged<int32_t>(v, key);
    case LOWBIT_GGUF_UINT64: return ranged<uint64_t>(v, key);
    case LOWBIT_GGUF_INT64: return GgufValue(v);
    default: break;
  }
  fail(LOWBIT_ERROR_INVALID_ARGUMENT,
       "'" + key + "': type " + std::to_string(type) + " is not an integer type (LOWBIT_GGUF_UINT8 .. LOWBIT_GGUF_INT64)");
}

// One native element of `type` at p.
GgufValue native_value(int type, const unsigned char* p) {
  auto load = [p](auto zero) {
    decltype(zero) x;
    std::memcpy(&x, p, sizeof x);
    return GgufValue(x);
  };
  switch (type) {
    case LOWBIT_GGUF_UINT8: return load(uint8_t{});
    case LOWBIT_GGUF_INT8: return load(int8_t{});
    case LOWBIT_GGUF_UINT16: return load(uint16_t{});
    case LOWBIT_GGUF_INT16: return load(int16_t{});
    case LOWBIT_GGUF_UINT32: return load(uint32_t{});
    case LOWBIT_GGUF_INT32: return load(int32_t{});
    case LOWBIT_GGUF_FLOAT32: return load(float{});
    case LOWBIT_GGUF_UINT64: return load(uint64_t{});
    case LOWBIT_GGUF_INT64: return load(int64_t{});
    case LOWBIT_GGUF_FLOAT64: return load(double{});
    case LOWBIT_GGUF_BOOL: return GgufValue(*p != 0);
    default: break;
  }
  throw std::logic_error("native_value: not a numeric type");
}

size_t native_size(int type) {
  switch (type) {
    case LOWBIT_GGUF_UINT8: case LOWBIT_GGUF_INT8: case LOWBIT_GGUF_BOOL: return 1;
    case LOWBIT_GGUF_UINT16: case LOWBIT_GGUF_INT16: return 2;
    case LOWBIT_GGUF_UINT32: case LOWBIT_GGUF_INT32: case LOWBIT_GGUF_FLOAT32: return 4;
    case LOWBIT_GGUF_UINT64: case LOWBIT_GGUF_INT64: case LOWBIT_GGUF_FLOAT64: return 8;
    default: return 0;
  }
}

std::vector<int64_t> shape_of(const int64_t* dims, int32_t n_dims) {
  if (n_dims < 0 || n_dims > LOWBIT_GGUF_MAX_DIMS)
    fail(LOWBIT_ERROR_INVALID_ARGUMENT, "n_dims " + std::to_string(n_dims) + " is not in [0, " +
                                            std::to_string(LOWBIT_GGUF_MAX_DIMS) + "]");
  if (n_dims > 0) require(dims, "dims");
  return std::vector<int64_t>(dims, dims + n_dims);
}

}  // namespace

extern "C" {

lowbit_status lowbit_gguf_open(const char* path, lowbit_gguf** out) {
  return guard(__func__, [&] {
    require(out, "out");
    *out = nullptr;
    *out = new lowbit_gguf{GgufFile::open(require(path, "path"))};
  });
}

void lowbit_gguf_close(lowbit_gguf* file) { delete file; }

lowbit_status lowbit_gguf_version(const lowbit_gguf* file, uint32_t* out_version) {
  return guard(__func__, [&] { *require(out_version, "out_version") = require(file, "file")->file.version(); });
}

lowbit_status lowbit_gguf_tensor_count(const lowbit_gguf* file, size_t* out_count) {
  return guard(__func__, [&] { *require(out_count, "out_count") = require(file, "file")->file.tensors().size(); });
}

lowbit_status lowbit_gguf_get_tensor_info(const lowbit_gguf* file, size_t index, lowbit_gguf_tensor_info* out) {
  return guard(__func__, [&] {
    require(out, "out");
    const GgufTensorInfo& t = tensor_at(file, index);
    out->name = t.name.c_str();
    out->type = static_cast<lowbit_format>(t.format);
    out->n_dims = static_cast<int32_t>(t.shape.size());
    for (int d = 0; d < LOWBIT_GGUF_MAX_DIMS; ++d)
      out->dims[d] = d < static_cast<int>(t.shape.size()) ? t.shape[static_cast<size_t>(d)] : 1;
    out->file_offset = t.file_offset;
    out->size = t.nbytes;
  });
}

lowbit_status lowbit_gguf_find_tensor(const lowbit_gguf* file, const char* name, size_t* out_index) {
  return guard(__func__, [&] {
    require(file, "file");
    require(name, "name");
    require(out_index, "out_index");
    const auto tensors = file->file.tensors();
    for (size_t i = 0; i < tensors.size(); ++i)
      if (tensors[i].name == name) {
        *out_index = i;
        return;
      }
    fail(LOWBIT_ERROR_NOT_FOUND, "no tensor '" + std::string(name) + "' in " + file->file.path().string());
  });
}

lowbit_status lowbit_gguf_tensor_data(const lowbit_gguf* file, size_t index, const void** out_data,
                                      size_t* out_size) {
  return guard(__func__, [&] {
    require(out_data, "out_data");
    require(out_size, "out_size");
    const GgufTensorInfo& t = tensor_at(file, index);
    const std::span<const std::byte> d = file->file.data(t);
    *out_data = d.data();
    *out_size = d.size();
  });
}

lowbit_status lowbit_gguf_tensor_to_f32(const lowbit_gguf* file, size_t index, float* out, size_t out_len) {
  return guard(__func__, [&] {
    const GgufTensorInfo& t = tensor_at(file, index);
    const auto n = static_cast<size_t>(t.elements());
    if (n > 0) require(out, "out");
    check_size("out", out_len, n, "floats");
    if (n == 0) return;
    dequantize(t.format, file->file.data(t), MatrixView<float>(out, t.rows(), t.row_length()));
  });
}

lowbit_status lowbit_gguf_metadata_count(const lowbit_gguf* file, size_t* out_count) {
  return guard(__func__, [&] { *require(out_count, "out_count") = require(file, "file")->file.metadata().size(); });
}

lowbit_status lowbit_gguf_metadata_key(const lowbit_gguf* file, size_t index, const char** out_key,
                                       lowbit_gguf_type* out_type) {
  return guard(__func__, [&] {
    const GgufKeyValue& kv = kv_at(file, index);
    if (out_key) *out_key = kv.key.c_str();
    if (out_type) *out_type = static_cast<lowbit_gguf_type>(kv.value.type());
  });
}

lowbit_status lowbit_gguf_find_key(const lowbit_gguf* file, const char* key, size_t* out_index) {
  return guard(__func__, [&] {
    require(file, "file");
    require(key, "key");
    require(out_index, "out_index");
    const auto md = file->file.metadata();
    for (size_t i = 0; i < md.size(); ++i)
      if (md[i].key == key) {
        *out_index = i;
        return;
      }
    fail(LOWBIT_ERROR_NOT_FOUND, "no metadata key '" + std::string(key) + "' in " + file->file.path().string());
  });
}

lowbit_status lowbit_gguf_get_int(const lowbit_gguf* file, size_t index, int64_t* out) {
  return guard(__func__, [&] {
    require(out, "out");
    const GgufKeyValue& kv = kv_at(file, index);
    *out = value_int(kv.value, "'" + kv.key + "'");
  });
}

lowbit_status lowbit_gguf_get_uint(const lowbit_gguf* file, size_t index, uint64_t* out) {
  return guard(__func__, [&] {
    require(out, "out");
    const GgufKeyValue& kv = kv_at(file, index);
    if (const auto* u = std::get_if<uint64_t>(&kv.value.storage())) {
      *out = *u;
      return;
    }
    const int64_t v = value_int(kv.value, "'" + kv.key + "'");
    if (v < 0) fail(LOWBIT_ERROR_TYPE_MISMATCH, "'" + kv.key + "' = " + std::to_string(v) + " is negative");
    *out = static_cast<uint64_t>(v);
  });
}

lowbit_status lowbit_gguf_get_float(const lowbit_gguf* file, size_t index, double* out) {
  return guard(__func__, [&] {
    require(out, "out");
    const GgufKeyValue& kv = kv_at(file, index);
    *out = value_float(kv.value, "'" + kv.key + "'");
  });
}

lowbit_status lowbit_gguf_get_bool(const lowbit_gguf* file, size_t index, int* out) {
  return guard(__func__, [&] {
    require(out, "out");
    const GgufKeyValue& kv = kv_at(file, index);
    const auto* b = std::get_if<bool>(&kv.value.storage());
    if (!b) mismatch("'" + kv.key + "'", kv.value.type(), "a bool");
    *out = *b ? 1 : 0;
  });
}

lowbit_status lowbit_gguf_get_string(const lowbit_gguf* file, size_t index, const char** out, size_t* out_len) {
  return guard(__func__, [&] {
    require(out, "out");
    const GgufKeyValue& kv = kv_at(file, index);
    const std::string& s = value_string(kv.value, "'" + kv.key + "'");
    *out = s.c_str();
    if (out_len) *out_len = s.size();
  });
}

lowbit_status lowbit_gguf_get_array_info(const lowbit_gguf* file, size_t index, lowbit_gguf_type* out_element_type,
                                         size_t* out_count) {
  return guard(__func__, [&] {
    const GgufKeyValue& kv = kv_at(file, index);
    const GgufArray& a = value_array(kv.value, "'" + kv.key + "'");
    if (out_element_type) *out_element_type = static_cast<lowbit_gguf_type>(a.element_type);
    if (out_count) *out_count = a.items.size();
  });
}

lowbit_status lowbit_gguf_get_array_int(const lowbit_gguf* file, size_t index, size_t item, int64_t* out) {
  return guard(__func__, [&] {
    require(out, "out");
    std::string what;
    const GgufValue& v = array_item(file, index, item, what);
    *out = value_int(v, what);
  });
}

lowbit_status lowbit_gguf_get_array_float(const lowbit_gguf* file, size_t index, size_t item, double* out) {
  return guard(__func__, [&] {
    require(out, "out");
    std::string what;
    const GgufValue& v = array_item(file, index, item, what);
    *out = value_float(v, what);
  });
}

lowbit_status lowbit_gguf_get_array_string(const lowbit_gguf* file, size_t index, size_t item, const char** out,
                                           size_t* out_len) {
  return guard(__func__, [&] {
    require(out, "out");
    std::string what;
    const GgufValue& v = array_item(file, index, item, what);
    const std::string& s = value_string(v, what);
    *out = s.c_str();
    if (out_len) *out_len = s.size();
  });
}

lowbit_status lowbit_gguf_writer_create(lowbit_gguf_writer** out) {
  return guard(__func__, [&] {
    require(out, "out");
    *out = nullptr;
    *out = new lowbit_gguf_writer{};
  });
}

void lowbit_gguf_writer_destroy(lowbit_gguf_writer* w) { delete w; }

lowbit_status lowbit_gguf_writer_set_int(lowbit_gguf_writer* w, const char* key, lowbit_gguf_type type,
                                         int64_t value) {
  return guard(__func__, [&] {
    GgufWriter& g = writer_of(w);
    const std::string k = key_of(key);
    g.set(k, int_value(enum_value(&type), value, k));
  });
}

lowbit_status lowbit_gguf_writer_set_uint64(lowbit_gguf_writer* w, const char* key, uint64_t value) {
  return guard(__func__, [&] { writer_of(w).set(key_of(key), GgufValue(value)); });
}

lowbit_status lowbit_gguf_writer_set_float(lowbit_gguf_writer* w, const char* key, lowbit_gguf_type type,
                                           double value) {
  return guard(__func__, [&] {
    GgufWriter& g = writer_of(w);
    const std::string k = key_of(key);
    const int t = enum_value(&type);
    if (t == LOWBIT_GGUF_FLOAT32)
      g.set(k, GgufValue(static_cast<float>(value)));
    else if (t == LOWBIT_GGUF_FLOAT64)
      g.set(k, GgufValue(value));
    else
      fail(LOWBIT_ERROR_INVALID_ARGUMENT,
           "'" + k + "': type " + std::to_string(t) + " is not LOWBIT_GGUF_FLOAT32 or LOWBIT_GGUF_FLOAT64");
  });
}

lowbit_status lowbit_gguf_writer_set_bool(lowbit_gguf_writer* w, const char* key, int value) {
  return guard(__func__, [&] { writer_of(w).set(key_of(key), GgufValue(value != 0)); });
}

lowbit_status lowbit_gguf_writer_set_string(lowbit_gguf_writer* w, const char* key, const char* value, size_t len) {
  return guard(__func__, [&] {
    GgufWriter& g = writer_of(w);
    const std::string k = key_of(key);
    if (len > 0) require(value, "value");
    g.set(k, GgufValue(std::string(value ? value : "", len)));
  });
}

lowbit_status lowbit_gguf_writer_set_string_array(lowbit_gguf_writer* w, const char* key, const char* const* items,
                                                  size_t count) {
  return guard(__func__, [&] {
    GgufWriter& g = writer_of(w);
    const std::string k = key_of(key);
    if (count > 0) require(items, "items");
    std::vector<std::string> v;
    v.reserve(count);
    for (size_t i = 0; i < count; ++i) {
      if (items[i] == nullptr) fail(LOWBIT_ERROR_INVALID_ARGUMENT, "items[" + std::to_string(i) + "] is NULL");
      v.emplace_back(items[i]);
    }
    g.set(k, GgufValue::array_of_strings(v));
  });
}

lowbit_status lowbit_gguf_writer_set_array(lowbit_gguf_writer* w, const char* key, lowbit_gguf_type element_type,
                                           const void* data, size_t data_size, size_t count) {
  return guard(__func__, [&] {
    GgufWriter& g = writer_of(w);
    const std::string k = key_of(key);
    const int et = enum_value(&element_type);
    const size_t size = native_size(et);
    if (size == 0)
      fail(LOWBIT_ERROR_INVALID_ARGUMENT, "'" + k + "': element type " + std::to_string(et) +
                                              " is not a numeric or bool type (use set_string_array for strings)");
    if (count > 0) require(data, "data");
    check_size("data", data_size, checked_mul(count, size, "count x element size"), "bytes");
    GgufArray a;
    a.element_type = static_cast<GgufType>(et);
    a.items.reserve(count);
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < count; ++i) a.items.push_back(native_value(et, p + i * size));
    g.set(k, GgufValue(std::move(a)));
  });
}

lowbit_status lowbit_gguf_writer_remove(lowbit_gguf_writer* w, const char* key) {
  return guard(__func__, [&] {
    const std::string k = key_of(key);
    if (!writer_of(w).remove(k)) fail(LOWBIT_ERROR_NOT_FOUND, "no metadata key '" + k + "'");
  });
}

lowbit_status lowbit_gguf_writer_copy_metadata(lowbit_gguf_writer* w, const lowbit_gguf* file) {
  return guard(__func__, [&] { writer_of(w).copy_metadata(require(file, "file")->file); });
}

lowbit_status lowbit_gguf_writer_add_tensor(lowbit_gguf_writer* w, const char* name, lowbit_format type,
                                            const int64_t* dims, int32_t n_dims, const void* data, size_t size) {
  return guard(__func__, [&] {
    GgufWriter& g = writer_of(w);
    require(name, "name");
    const Format f = to_format(type);
    std::vector<int64_t> shape = shape_of(dims, n_dims);
    if (size > 0) require(data, "data");
    const auto* p = static_cast<const std::byte*>(data);
    g.add_tensor(name, std::move(shape), f, size > 0 ? std::vector<std::byte>(p, p + size) : std::vector<std::byte>());
  });
}

lowbit_status lowbit_gguf_writer_add_tensor_borrowed(lowbit_gguf_writer* w, const char* name, lowbit_format type,
                                                     const int64_t* dims, int32_t n_dims, const void* data,
                                                     size_t size) {
  return guard(__func__, [&] {
    GgufWriter& g = writer_of(w);
    require(name, "name");
    const Format f = to_format(type);
    std::vector<int64_t> shape = shape_of(dims, n_dims);
    if (size > 0) require(data, "data");
    g.add_tensor(name, std::move(shape), f, std::span<const std::byte>(static_cast<const std::byte*>(data), size));
  });
}

lowbit_status lowbit_gguf_writer_write(const lowbit_gguf_writer* w, const char* path) {
  return guard(__func__, [&] { require(w, "writer")->writer.write(require(path, "path")); });
}

}  // extern "C"
