// lowbit._lowbit: the Python face of the C++ library (pybind11). The package's
// lowbit/__init__.py normalises arguments (dtypes, shapes, format names) and adds the
// progress bar; this module does the work with the GIL released and hands numpy arrays
// in and out without copies: results are allocated as numpy arrays and written in place,
// GSQ results and GGUF tensors are views whose base keeps the owner alive.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/lowbit.hpp"

namespace py = pybind11;
using namespace lowbit;

namespace {

PyObject* g_error = nullptr;  // lowbit.Error(ValueError, RuntimeError)

[[noreturn]] void fail(const std::string& message) { throw Error(message); }

Format parse_format(const py::handle& f) {
  if (py::isinstance<py::str>(f)) {
    const std::string name = f.cast<std::string>();
    if (const auto r = format_from_name(name)) return *r;
    std::string names;
    for (const FormatTraits& t : all_formats()) {
      if (!names.empty()) names += ' ';
      names += t.name;
    }
    fail("unknown format '" + name + "' (one of: " + names + ")");
  }
  if (py::isinstance<py::int_>(f)) {
    const auto id = f.cast<long long>();
    if (id < 0 || id > 0xFFFFFFFFll) fail("unknown format id " + std::to_string(id));
    return format_from_ggml_type(static_cast<uint32_t>(id));
  }
  fail("a format is a name such as 'Q4_K' or a GGML type id, not " +
       std::string(py::str(py::type::handle_of(f).attr("__name__"))));
}

// A float32 matrix view of a 2-D array whose rows are contiguous (the Python side copies
// anything else first).
ConstMatrixView<float> matrix_of(const py::array& a, const char* what) {
  if (!py::isinstance<py::array_t<float>>(a) || a.ndim() != 2)
    fail(std::string(what) + ": expected a 2-D float32 array");
  const auto s0 = a.strides(0), s1 = a.strides(1);
  const auto rows = static_cast<int64_t>(a.shape(0)), cols = static_cast<int64_t>(a.shape(1));
  if (rows == 0 || cols == 0) return ConstMatrixView<float>(static_cast<const float*>(a.data()), rows, cols, cols);
  if (s1 != static_cast<py::ssize_t>(sizeof(float)) || s0 % static_cast<py::ssize_t>(sizeof(float)) != 0 ||
      (rows > 1 && s0 < cols * static_cast<py::ssize_t>(sizeof(float))))
    fail(std::string(what) + ": rows must be contiguous float32 (got strides " + std::to_string(s0) + ", " +
         std::to_string(s1) + ")");
  const int64_t stride = rows > 1 ? s0 / static_cast<py::ssize_t>(sizeof(float)) : cols;
  return ConstMatrixView<float>(static_cast<const float*>(a.data()), rows, cols, stride);
}

std::vector<float> vector_of(const py::object& v, int64_t expect, const char* what) {
  if (v.is_none()) return {};
  const auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(v);
  if (!a || a.ndim() != 1) fail(std::string(what) + ": expected a 1-D float array");
  if (expect >= 0 && a.shape(0) != expect)
    fail(std::string(what) + " has " + std::to_string(a.shape(0)) + " entries, expected one per column (" +
         std::to_string(expect) + ")");
  return std::vector<float>(a.data(), a.data() + a.shape(0));
}

// A read-only numpy view of `n` elements at `p`, kept alive by `base`.
template <class T>
py::array view(const T* p, std::vector<py::ssize_t> shape, const py::handle& base) {
  py::array a(py::dtype::of<T>(), std::move(shape), {}, p, base);
  a.attr("flags").attr("writeable") = false;
  return a;
}

template <class T>
py::object view_or_none(const std::vector<T>& v, std::vector<py::ssize_t> shape, const py::handle& base) {
  if (v.empty()) return py::none();
  return view(v.data(), std::move(shape), base);
}

// ------------------------------------------------------------------ GSQ

GsqScheme parse_scheme(const std::string& s) {
  if (s == "symmetric" || s == "sym") return GsqScheme::symmetric;
  if (s == "asymmetric" || s == "asym") return GsqScheme::asymmetric;
  if (s == "asymmetric_float" || s == "asym-fmin" || s == "float_min") return GsqScheme::asymmetric_float;
  fail("unknown GSQ scheme '" + s + "' (symmetric, asymmetric or asymmetric_float)");
}
ScaleSearch parse_search(const std::string& s) {
  if (s == "rtn") return ScaleSearch::rtn;
  if (s == "mse") return ScaleSearch::mse;
  if (s == "importance") return ScaleSearch::importance;
  if (s == "hqq") return ScaleSearch::hqq;
  fail("unknown GSQ search '" + s + "' (rtn, mse, importance or hqq)");
}
ScaleStorage parse_storage(const std::string& s) {
  if (s == "fp16") return ScaleStorage::fp16;
  if (s == "bf16") return ScaleStorage::bf16;
  if (s == "fp32") return ScaleStorage::fp32;
  fail("unknown GSQ scale storage '" + s + "' (fp16, bf16 or fp32)");
}
std::string scheme_name(GsqScheme s) {
  switch (s) {
    case GsqScheme::symmetric: return "symmetric";
    case GsqScheme::asymmetric: return "asymmetric";
    case GsqScheme::asymmetric_float: return "asymmetric_float";
  }
  return "?";
}

struct PyGsqResult {
  GsqResult r;
};

py::array gsq_dequantize_py(const GsqResult& q) {
  py::array_t<float> out({static_cast<py::ssize_t>(q.rows), static_cast<py::ssize_t>(q.cols)});
  float* p = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    gsq_dequantize(q, MatrixView<float>(p, q.rows, q.cols));
  }
  return out;
}

// ------------------------------------------------------------------ GGUF

struct PyGguf {
  std::shared_ptr<const GgufFile> file;
  const GgufFile& get() const {
    if (!file) fail("GGUF file is closed");
    return *file;
  }
};

struct PyGgufTensor {
  std::shared_ptr<const GgufFile> file;  // keeps the mapping alive
  size_t index;
  const GgufTensorInfo& info() const { return file->tensors()[index]; }
};

py::object gguf_value(const GgufValue& v) {
  return std::visit(
      [](const auto& x) -> py::object {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          // Keys and strings are UTF-8; a file with invalid bytes still reads (replaced).
          return py::reinterpret_steal<py::object>(PyUnicode_DecodeUTF8(x.data(), static_cast<Py_ssize_t>(x.size()),
                                                                        "replace"));
        } else if constexpr (std::is_same_v<T, GgufArray>) {
          py::list l(x.items.size());
          for (size_t i = 0; i < x.items.size(); ++i) l[i] = gguf_value(x.items[i]);
          return std::move(l);
        } else if constexpr (std::is_same_v<T, bool>) {
          return py::bool_(x);
        } else if constexpr (std::is_floating_point_v<T>) {
          return py::float_(static_cast<double>(x));
        } else {
          return py::int_(x);
        }
      },
      v.storage());
}

std::vector<py::ssize_t> numpy_shape(const GgufTensorInfo& t) {
  std::vector<py::ssize_t> s(t.shape.rbegin(), t.shape.rend());
  return s;
}

}  // namespace

PYBIND11_MODULE(_lowbit, m) {
  m.doc() = "lowbit's compiled core; use the `lowbit` package, which wraps it.";

  g_error = PyErr_NewExceptionWithDoc(
      "lowbit.Error",
      "Raised for every input lowbit refuses and every operation that fails; the message names the value.\n"
      "A subclass of both ValueError and RuntimeError.",
      py::make_tuple(py::handle(PyExc_ValueError), py::handle(PyExc_RuntimeError)).release().ptr(), nullptr);
  m.attr("Error") = py::handle(g_error);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      PyErr_SetString(g_error, e.what());
    }
  });

  m.attr("__version__") = kVersionString;
  m.def("set_num_threads", &set_num_threads, py::arg("threads"),
        "Caps lowbit's worker threads (0: all cores). Results never depend on it.");
  m.def("num_threads", &num_threads);
  m.def(
      "set_log_level",
      [](const std::string& level) {
        static const char* names[] = {"trace", "debug", "info", "warning", "error", "off"};
        for (int i = 0; i < 6; ++i)
          if (level == names[i] || (i == 3 && level == "warn")) return set_log_level(static_cast<LogLevel>(i));
        fail("unknown log level '" + level + "' (trace, debug, info, warning, error or off)");
      },
      py::arg("level"), "The library's log on stderr: 'info', 'warning', ..., 'off' (the default).");

  m.def("formats", [] {
    py::list out;
    for (const FormatTraits& t : all_formats())
      out.append(py::make_tuple(std::string(t.name), t.ggml_type, t.block_elems, t.block_bytes, t.bits_per_weight(),
                                t.quantized, t.activation_only));
    return out;
  });
  m.def("format_name", [](const py::object& f) { return std::string(traits(parse_format(f)).name); });
  m.def("row_bytes", [](const py::object& f, int64_t cols) { return row_bytes(parse_format(f), cols); });

  m.def(
      "quantize",
      [](const py::array& a, const py::object& f, const py::object& importance) {
        const Format fmt = parse_format(f);
        const ConstMatrixView<float> w = matrix_of(a, "quantize");
        const std::vector<float> imp = vector_of(importance, w.cols, "importance");
        const size_t rb = row_bytes(fmt, w.cols);
        py::array_t<uint8_t> out({static_cast<py::ssize_t>(w.rows), static_cast<py::ssize_t>(rb)});
        auto* p = reinterpret_cast<std::byte*>(out.mutable_data());
        if (w.rows > 0) {
          py::gil_scoped_release nogil;
          quantize(fmt, w, std::span<std::byte>(p, static_cast<size_t>(w.rows) * rb), imp);
        }
        return out;
      },
      py::arg("array"), py::arg("format"), py::arg("importance") = py::none());

  m.def(
      "dequantize",
      [](const py::array_t<uint8_t, py::array::c_style>& data, const py::object& f, int64_t rows, int64_t cols) {
        const Format fmt = parse_format(f);
        if (rows < 0 || cols < 0) fail("dequantize: bad shape " + std::to_string(rows) + " x " + std::to_string(cols));
        const size_t need = static_cast<size_t>(rows) * row_bytes(fmt, cols);
        if (static_cast<size_t>(data.size()) != need)
          fail("dequantize: " + std::string(traits(fmt).name) + " data of " + std::to_string(data.size()) +
               " bytes for a " + std::to_string(rows) + " x " + std::to_string(cols) + " matrix, which needs " +
               std::to_string(need));
        py::array_t<float> out({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(cols)});
        float* p = out.mutable_data();
        const auto* src = reinterpret_cast<const std::byte*>(data.data());
        if (rows * cols > 0) {
          py::gil_scoped_release nogil;
          dequantize(fmt, std::span<const std::byte>(src, need), MatrixView<float>(p, rows, cols));
        }
        return out;
      },
      py::arg("data"), py::arg("format"), py::arg("rows"), py::arg("cols"));

  // ---------------------------------------------------------------- GSQ
  py::class_<GsqConfig>(m, "GsqConfig", "Group-scaling quantization settings (docs/gsq.md).")
      .def(py::init([](int bits, int group_size, const std::string& scheme, const std::string& search,
                       const std::string& scale_storage, bool double_quant, double mse_norm, int mse_grid,
                       double mse_max_shrink, int hqq_iters) {
             GsqConfig c;
             c.bits = bits;
             c.group_size = group_size;
             c.scheme = parse_scheme(scheme);
             c.search = parse_search(search);
             c.scale_storage = parse_storage(scale_storage);
             c.double_quant = double_quant;
             c.mse_norm = mse_norm;
             c.mse_grid = mse_grid;
             c.mse_max_shrink = mse_max_shrink;
             c.hqq_iters = hqq_iters;
             c.validate();
             return c;
           }),
           py::arg("bits") = 4, py::arg("group_size") = 128, py::arg("scheme") = "asymmetric",
           py::arg("search") = "mse", py::arg("scale_storage") = "fp16", py::arg("double_quant") = false,
           py::arg("mse_norm") = 2.0, py::arg("mse_grid") = 100, py::arg("mse_max_shrink") = 0.8,
           py::arg("hqq_iters") = 20)
      .def_readonly("bits", &GsqConfig::bits)
      .def_readonly("group_size", &GsqConfig::group_size)
      .def_property_readonly("scheme", [](const GsqConfig& c) { return scheme_name(c.scheme); })
      .def_property_readonly("search", [](const GsqConfig& c) { return std::string(to_string(c.search)); })
      .def_property_readonly("scale_storage",
                             [](const GsqConfig& c) { return std::string(to_string(c.scale_storage)); })
      .def_readonly("double_quant", &GsqConfig::double_quant)
      .def_readonly("mse_norm", &GsqConfig::mse_norm)
      .def_readonly("mse_grid", &GsqConfig::mse_grid)
      .def_readonly("mse_max_shrink", &GsqConfig::mse_max_shrink)
      .def_readonly("hqq_iters", &GsqConfig::hqq_iters)
      .def("describe", &GsqConfig::describe)
      .def("__repr__", [](const GsqConfig& c) { return "GsqConfig(" + c.describe() + ")"; });

  py::class_<PyGsqResult>(m, "GsqResult", "A GSQ-quantized matrix: packed codes and per-group parameters.")
      .def_property_readonly("config", [](const PyGsqResult& q) { return q.r.config; })
      .def_property_readonly("rows", [](const PyGsqResult& q) { return q.r.rows; })
      .def_property_readonly("cols", [](const PyGsqResult& q) { return q.r.cols; })
      .def_property_readonly("group_size", [](const PyGsqResult& q) { return q.r.group(); })
      .def_property_readonly("qweight",
                             [](py::object self) {
                               const GsqResult& q = self.cast<const PyGsqResult&>().r;
                               return view(q.qweight.data(), {q.rows, q.words_per_row()}, self);
                             })
      .def_property_readonly("scales",
                             [](py::object self) {
                               const GsqResult& q = self.cast<const PyGsqResult&>().r;
                               return view(q.scales.data(), {q.rows, q.groups()}, self);
                             })
      .def_property_readonly("zeros",
                             [](py::object self) {
                               const GsqResult& q = self.cast<const PyGsqResult&>().r;
                               return view(q.zeros.data(), {q.rows, q.groups()}, self);
                             })
      .def_property_readonly("mins",
                             [](py::object self) {
                               const GsqResult& q = self.cast<const PyGsqResult&>().r;
                               return view_or_none(q.mins, {q.rows, q.groups()}, self);
                             })
      .def_property_readonly("scale_codes",
                             [](py::object self) {
                               const GsqResult& q = self.cast<const PyGsqResult&>().r;
                               return view_or_none(q.scale_codes, {q.rows, q.groups()}, self);
                             })
      .def_property_readonly("scale_blocks",
                             [](py::object self) {
                               const GsqResult& q = self.cast<const PyGsqResult&>().r;
                               return view_or_none(q.scale_blocks, {static_cast<py::ssize_t>(q.scale_blocks.size())},
                                                   self);
                             })
      .def_property_readonly("g_idx",
                             [](py::object self) {
                               const GsqResult& q = self.cast<const PyGsqResult&>().r;
                               return view_or_none(q.g_idx, {q.cols}, self);
                             })
      .def_property_readonly("bits_per_weight", [](const PyGsqResult& q) { return q.r.bits_per_weight(); })
      .def("codes",
           [](const PyGsqResult& q) {
             py::array_t<uint8_t> out({q.r.rows, q.r.cols});
             uint8_t* p = out.mutable_data();
             for (int64_t r = 0; r < q.r.rows; ++r)
               for (int64_t c = 0; c < q.r.cols; ++c) p[r * q.r.cols + c] = static_cast<uint8_t>(q.r.code(r, c));
             return out;
           })
      .def("dequantize", [](const PyGsqResult& q) { return gsq_dequantize_py(q.r); })
      .def(
          "gemv",
          [](const PyGsqResult& q, const py::array_t<float, py::array::c_style | py::array::forcecast>& x) {
            if (x.ndim() != 1 || x.shape(0) != q.r.cols)
              fail("gemv: x must have " + std::to_string(q.r.cols) + " entries");
            py::array_t<float> y(q.r.rows);
            float* yp = y.mutable_data();
            const float* xp = x.data();
            {
              py::gil_scoped_release nogil;
              gsq_gemv(q.r, std::span<const float>(xp, static_cast<size_t>(q.r.cols)),
                       std::span<float>(yp, static_cast<size_t>(q.r.rows)));
            }
            return y;
          },
          py::arg("x"))
      .def("__repr__", [](const PyGsqResult& q) {
        return "GsqResult(" + std::to_string(q.r.rows) + " x " + std::to_string(q.r.cols) + ", " +
               q.r.config.describe() + ")";
      });

  m.def(
      "gsq_quantize",
      [](const py::array& a, const GsqConfig& cfg, const py::object& importance) {
        const ConstMatrixView<float> w = matrix_of(a, "gsq_quantize");
        const std::vector<float> imp = vector_of(importance, w.cols, "importance");
        PyGsqResult out;
        {
          py::gil_scoped_release nogil;
          out.r = gsq_quantize(cfg, w, imp);
        }
        return out;
      },
      py::arg("w"), py::arg("config"), py::arg("importance") = py::none());

  // ---------------------------------------------------------------- Hessian, GPTQ
  py::class_<HessianAccumulator>(m, "Hessian",
                                 "H = (2/N) sum x x^T over a layer's calibration inputs, accumulated batch by batch.")
      .def(py::init<int64_t>(), py::arg("cols"))
      .def(
          "_add_f32",
          [](HessianAccumulator& h, const py::array& a) {
            const ConstMatrixView<float> x = matrix_of(a, "Hessian.add");
            if (x.cols != h.cols())
              fail("Hessian.add: activations have " + std::to_string(x.cols) + " columns, the Hessian " +
                   std::to_string(h.cols()));
            py::gil_scoped_release nogil;
            h.add(x);
          },
          py::arg("x"))
      .def(
          "_add_half",
          [](HessianAccumulator& h, const py::array_t<uint16_t, py::array::c_style>& a, bool bf16) {
            if (a.ndim() != 2 || a.shape(1) != h.cols())
              fail("Hessian.add: activations must be [tokens x " + std::to_string(h.cols()) + "]");
            const uint16_t* p = a.data();
            const int64_t tokens = a.shape(0), cols = h.cols();
            py::gil_scoped_release nogil;
            h.add(bf16 ? ActivationType::bf16 : ActivationType::f16, p, tokens, cols);
          },
          py::arg("x"), py::arg("bf16"))
      .def("merge", &HessianAccumulator::merge, py::arg("other"), "Adds another Hessian's tokens to this one.")
      .def_property_readonly("cols", &HessianAccumulator::cols)
      .def_property_readonly("tokens", &HessianAccumulator::tokens)
      .def_property_readonly("batches", &HessianAccumulator::batches)
      .def(
          "matrix",
          [](const HessianAccumulator& h) {
            std::vector<float> v = h.matrix();
            py::array_t<float> out({h.cols(), h.cols()});
            std::memcpy(out.mutable_data(), v.data(), v.size() * sizeof(float));
            return out;
          },
          "The full symmetric matrix, float32 [cols x cols].")
      .def(
          "importance",
          [](const HessianAccumulator& h) {
            std::vector<float> v = h.importance();
            py::array_t<float> out(h.cols());
            std::memcpy(out.mutable_data(), v.data(), v.size() * sizeof(float));
            return out;
          },
          "diag(H) / 2: the mean of x^2 per input column (llama.cpp's imatrix).")
      .def(
          "save", [](const HessianAccumulator& h, const std::string& path) { h.save(path); }, py::arg("path"))
      .def_static(
          "load", [](const std::string& path) { return HessianAccumulator::load(path); }, py::arg("path"))
      .def("__repr__", [](const HessianAccumulator& h) {
        return "Hessian(cols=" + std::to_string(h.cols()) + ", tokens=" + std::to_string(h.tokens()) + ")";
      });

  auto gptq_config = [](bool act_order, bool static_groups, double damp_percent, int block_size) {
    GptqConfig g;
    g.act_order = act_order;
    g.static_groups = static_groups;
    g.damp_percent = damp_percent;
    g.block_size = block_size;
    g.validate();
    return g;
  };
  // The Hessian as an upper triangle plus its importance (diag / 2 unless given).
  struct HessianIn {
    std::vector<float> owned;
    std::span<const float> upper;
    std::vector<float> importance;
  };
  auto hessian_in = [](const py::object& h, int64_t cols, const py::object& importance) {
    auto in = std::make_shared<HessianIn>();
    if (py::isinstance<HessianAccumulator>(h)) {
      const HessianAccumulator& acc = h.cast<const HessianAccumulator&>();
      if (acc.cols() != cols)
        fail("gptq: the Hessian has " + std::to_string(acc.cols()) + " columns, the weight " + std::to_string(cols));
      in->upper = acc.upper();
      in->importance = acc.importance();
    } else {
      const auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(h);
      if (!a || a.ndim() != 2 || a.shape(0) != cols || a.shape(1) != cols)
        fail("gptq: the Hessian must be a lowbit.Hessian or a [" + std::to_string(cols) + " x " +
             std::to_string(cols) + "] float array");
      in->owned.assign(a.data(), a.data() + cols * cols);
      in->upper = in->owned;
      in->importance.resize(static_cast<size_t>(cols));
      for (int64_t k = 0; k < cols; ++k) in->importance[k] = 0.5f * in->owned[k * cols + k];
    }
    if (!importance.is_none()) in->importance = vector_of(importance, cols, "importance");
    return in;
  };
  auto report_dict = [](const GptqReport& r) {
    py::dict d;
    d["damp_percent_used"] = r.damp_percent_used;
    d["damp_retries"] = r.damp_retries;
    d["dead_columns"] = r.dead_columns;
    d["perm"] = r.perm;
    return d;
  };

  m.def(
      "gptq_ggml",
      [=](const py::array& a, const py::object& h, const py::object& f, bool act_order, bool static_groups,
          double damp_percent, int block_size, const py::object& importance) {
        const Format fmt = parse_format(f);
        const ConstMatrixView<float> w = matrix_of(a, "gptq");
        const GptqConfig cfg = gptq_config(act_order, static_groups, damp_percent, block_size);
        const auto in = hessian_in(h, w.cols, importance);
        const size_t rb = row_bytes(fmt, w.cols);
        py::array_t<uint8_t> out({static_cast<py::ssize_t>(w.rows), static_cast<py::ssize_t>(rb)});
        GptqReport rep;
        {
          py::gil_scoped_release nogil;
          GgmlTarget target(fmt, in->importance);
          rep = gptq_solve(cfg, w, in->upper, target);
          const std::vector<std::byte> bytes = target.result();
          std::memcpy(out.mutable_data(), bytes.data(), bytes.size());
        }
        return py::make_tuple(out, report_dict(rep));
      },
      py::arg("w"), py::arg("hessian"), py::arg("format"), py::arg("act_order"), py::arg("static_groups"),
      py::arg("damp_percent"), py::arg("block_size"), py::arg("importance"));

  m.def(
      "gptq_gsq",
      [=](const py::array& a, const py::object& h, const GsqConfig& gcfg, bool act_order, bool static_groups,
          double damp_percent, int block_size, const py::object& importance) {
        const ConstMatrixView<float> w = matrix_of(a, "gptq");
        const GptqConfig cfg = gptq_config(act_order, static_groups, damp_percent, block_size);
        const auto in = hessian_in(h, w.cols, importance);
        PyGsqResult out;
        GptqReport rep;
        {
          py::gil_scoped_release nogil;
          GsqTarget target(gcfg, in->importance);
          rep = gptq_solve(cfg, w, in->upper, target);
          out.r = target.result();
        }
        return py::make_tuple(std::move(out), report_dict(rep));
      },
      py::arg("w"), py::arg("hessian"), py::arg("config"), py::arg("act_order"), py::arg("static_groups"),
      py::arg("damp_percent"), py::arg("block_size"), py::arg("importance"));

  // ---------------------------------------------------------------- GGUF
  py::class_<PyGgufTensor>(m, "GGUFTensor", "One tensor of a GGUFFile: its facts and a view of its bytes.")
      .def_property_readonly("name", [](const PyGgufTensor& t) { return t.info().name; })
      .def_property_readonly("type", [](const PyGgufTensor& t) { return std::string(traits(t.info().format).name); })
      .def_property_readonly("ggml_type", [](const PyGgufTensor& t) { return static_cast<uint32_t>(t.info().format); })
      .def_property_readonly("shape",
                             [](const PyGgufTensor& t) { return py::tuple(py::cast(numpy_shape(t.info()))); })
      .def_property_readonly("ggml_shape", [](const PyGgufTensor& t) { return py::tuple(py::cast(t.info().shape)); })
      .def_property_readonly("nbytes", [](const PyGgufTensor& t) { return t.info().nbytes; })
      .def_property_readonly("offset", [](const PyGgufTensor& t) { return t.info().file_offset; })
      .def_property_readonly("n_elements", [](const PyGgufTensor& t) { return t.info().elements(); })
      .def_property_readonly(
          "data",
          [](const PyGgufTensor& t) {
            const GgufTensorInfo& info = t.info();
            const std::span<const std::byte> d = t.file->data(info);
            // The base owns a reference to the file: the view outlives GGUFFile.close().
            py::capsule owner(new std::shared_ptr<const GgufFile>(t.file),
                              [](void* p) { delete static_cast<std::shared_ptr<const GgufFile>*>(p); });
            std::vector<py::ssize_t> shape = numpy_shape(info);
            if (shape.empty()) {
              shape = {static_cast<py::ssize_t>(d.size())};
            } else {
              shape.back() = static_cast<py::ssize_t>(info.elements() == 0 ? 0 : row_bytes(info.format, info.row_length()));
            }
            return view(reinterpret_cast<const uint8_t*>(d.data()), shape, owner);
          },
          "The tensor's bytes in the mapped file (no copy, read-only): uint8, shaped like the tensor with the "
          "last dimension in bytes (gguf's layout).")
      .def(
          "to_float",
          [](const PyGgufTensor& t) {
            const GgufTensorInfo& info = t.info();
            py::array_t<float> out(numpy_shape(info));
            float* p = out.mutable_data();
            const std::span<const std::byte> d = t.file->data(info);
            if (info.elements() > 0) {
              py::gil_scoped_release nogil;
              dequantize(info.format, d, MatrixView<float>(p, info.rows(), info.row_length()));
            }
            return out;
          },
          "Decodes the tensor (any type) to a float32 array of its shape.")
      .def("__repr__", [](const PyGgufTensor& t) {
        const GgufTensorInfo& i = t.info();
        return "GGUFTensor('" + i.name + "', " + std::string(traits(i.format).name) + ", shape " +
               std::string(py::str(py::tuple(py::cast(numpy_shape(i))))) + ")";
      });

  py::class_<PyGguf>(m, "GGUFFile", "A GGUF file, mapped read-only and validated on open.")
      .def(py::init([](const py::object& path) {
             const std::string p = py::str(py::module_::import("os").attr("fspath")(path));
             return PyGguf{std::make_shared<const GgufFile>(GgufFile::open(p))};
           }),
           py::arg("path"))
      .def_property_readonly("path", [](const PyGguf& f) { return f.get().path().string(); })
      .def_property_readonly("version", [](const PyGguf& f) { return f.get().version(); })
      .def_property_readonly("alignment", [](const PyGguf& f) { return f.get().alignment(); })
      .def_property_readonly("closed", [](const PyGguf& f) { return !f.file; })
      .def_property_readonly(
          "metadata",
          [](const PyGguf& f) {
            py::dict d;
            for (const GgufKeyValue& kv : f.get().metadata()) d[py::str(kv.key)] = gguf_value(kv.value);
            return d;
          },
          "Every key, in file order: ints, floats, bools, strings and lists as Python values.")
      .def_property_readonly(
          "metadata_types",
          [](const PyGguf& f) {
            py::dict d;
            for (const GgufKeyValue& kv : f.get().metadata()) {
              std::string t = gguf_type_name(kv.value.type());
              if (const auto* a = std::get_if<GgufArray>(&kv.value.storage()))
                t += "[" + gguf_type_name(a->element_type) + "]";
              d[py::str(kv.key)] = t;
            }
            return d;
          },
          "Each key's GGUF type: 'uint32', 'string', 'array[string]', ...")
      .def_property_readonly("tensors",
                             [](const PyGguf& f) {
                               py::list l;
                               const size_t n = f.get().tensors().size();
                               for (size_t i = 0; i < n; ++i) l.append(PyGgufTensor{f.file, i});
                               return l;
                             })
      .def(
          "tensor",
          [](const PyGguf& f, const std::string& name) {
            const auto ts = f.get().tensors();
            for (size_t i = 0; i < ts.size(); ++i)
              if (ts[i].name == name) return PyGgufTensor{f.file, i};
            fail("no tensor '" + name + "' in " + f.get().path().string());
          },
          py::arg("name"))
      .def("__len__", [](const PyGguf& f) { return f.get().tensors().size(); })
      .def("close", [](PyGguf& f) { f.file.reset(); },
           "Releases the file; views of tensor data taken before keep the mapping until they are freed.")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](PyGguf& f, const py::args&) { f.file.reset(); })
      .def("__repr__", [](const PyGguf& f) {
        if (!f.file) return std::string("GGUFFile(closed)");
        return "GGUFFile('" + f.file->path().string() + "', " + std::to_string(f.file->tensors().size()) +
               " tensors)";
      });

  // ---------------------------------------------------------------- whole models
  m.def(
      "quantize_model",
      [](const std::string& in, const std::string& out, const std::string& type, const std::optional<std::string>& imatrix,
         const std::string& method, const std::optional<std::string>& hessians, int threads,
         const py::object& progress) {
        const auto scheme = quant_scheme_from_name(type);
        if (!scheme) {
          std::string names;
          for (std::string_view n : quant_scheme_names()) {
            if (!names.empty()) names += ' ';
            names += n;
          }
          fail("unknown type '" + type + "' (one of: " + names + ")");
        }
        QuantizeModelOptions o;
        o.scheme = *scheme;
        const auto m = quant_method_from_name(method);
        if (!m) fail("unknown method '" + method + "' (rtn, gsq or gptq)");
        o.method = *m;
        if (threads < 0) fail("threads " + std::to_string(threads) + " is negative");
        o.threads = threads;
        if (o.method == QuantMethod::gptq && !hessians)
          fail("method 'gptq' needs hessians= (a folder of <tensor name>.hess files)");
        if (o.method != QuantMethod::gptq && hessians) fail("hessians= is only used by method 'gptq'");
        if (hessians) {
          if (!std::filesystem::is_directory(*hessians)) fail("hessians " + *hessians + ": not a directory");
          o.hessians = hessians_from_directory(*hessians);
        }
        const auto out_dir = std::filesystem::absolute(out).parent_path();
        if (!std::filesystem::is_directory(out_dir))
          fail("output " + out + ": folder " + out_dir.string() + " does not exist");
        // Python errors raised by the callback (KeyboardInterrupt included, checked at
        // every step) cancel the run: the error stays set and is raised once the library
        // has unwound, and no output file is written.
        bool stop = false;
        o.progress = [&](int64_t done, int64_t total) {
          py::gil_scoped_acquire gil;
          if (PyErr_CheckSignals() != 0) {
            stop = true;
            return;
          }
          if (progress.is_none()) return;
          try {
            progress(done, total);
          } catch (py::error_already_set& e) {
            e.restore();
            stop = true;
          }
        };
        o.cancelled = [&] { return stop; };
        QuantizePlan plan;
        try {
          if (imatrix) o.imatrix = importance_map(load_imatrix(*imatrix));
          py::gil_scoped_release nogil;
          plan = quantize_model(std::filesystem::path(in), std::filesystem::path(out), o);
        } catch (const QuantizeCancelled&) {
          if (PyErr_Occurred()) throw py::error_already_set();
          throw;
        }
        py::list tensors;
        int64_t converted = 0;
        for (const PlannedTensor& t : plan.tensors) {
          converted += t.converts();
          tensors.append(py::make_tuple(t.name, std::string(traits(t.from).name), std::string(traits(t.to()).name),
                                        t.bytes_in, t.bytes_out));
        }
        py::dict d;
        d["type"] = o.scheme.name;
        d["tensors"] = tensors;
        d["converted"] = converted;
        d["fallbacks"] = plan.fallbacks;
        d["elements"] = plan.elements;
        d["bytes_in"] = plan.bytes_in;
        d["bytes_out"] = plan.bytes_out;
        return d;
      },
      py::arg("input"), py::arg("output"), py::arg("type"), py::arg("imatrix"), py::arg("method"),
      py::arg("hessians"), py::arg("threads"), py::arg("progress"));
}
