#pragma once
// Private helpers of the C API (include/lowbit/lowbit.h): the exception guard that turns
// every C++ exception into a status and this thread's message, and the argument checks
// every entry point shares. Not installed.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <utility>

#include "lowbit/core/error.hpp"
#include "lowbit/formats/format.hpp"
#include "lowbit/lowbit.h"
#include "lowbit/model/quantize_model.hpp"

// Outside namespace lowbit on purpose: the shared library exports lowbit::* (the C++
// API), and these helpers are not part of it.
namespace lowbit_capi {
using namespace lowbit;

// An argument the C layer itself refuses, with the status it maps to.
struct CallError {
  lowbit_status status;
  std::string message;
};

[[noreturn]] inline void fail(lowbit_status status, std::string message) {
  throw CallError{status, std::move(message)};
}

// Records `message` (prefixed with the function's name) as this thread's last error.
lowbit_status set_error(const char* function, lowbit_status status, const std::string& message) noexcept;

// Runs body(); any exception becomes a status and this thread's message.
template <class Body>
lowbit_status guard(const char* function, Body&& body) noexcept {
  try {
    std::forward<Body>(body)();
    return LOWBIT_OK;
  } catch (const CallError& e) {
    return set_error(function, e.status, e.message);
  } catch (const QuantizeCancelled& e) {
    return set_error(function, LOWBIT_ERROR_CANCELLED, e.what());
  } catch (const Error& e) {
    return set_error(function, LOWBIT_ERROR, e.what());
  } catch (const std::bad_alloc&) {
    return set_error(function, LOWBIT_ERROR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return set_error(function, LOWBIT_ERROR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return set_error(function, LOWBIT_ERROR_INTERNAL, "internal error: unknown exception");
  }
}

// A null pointer argument: LOWBIT_ERROR_INVALID_ARGUMENT naming it.
template <class T>
T* require(T* p, const char* what) {
  if (p == nullptr) fail(LOWBIT_ERROR_INVALID_ARGUMENT, std::string(what) + " is NULL");
  return p;
}

// An enum argument as the int the C caller passed. C lets any int travel in an enum-typed
// parameter; C++ gives such an enum a narrower range (and UBSan checks it), so the value
// is read through its bytes, never loaded as the enum type.
template <class E>
int enum_value(const E* e) {
  static_assert(sizeof(E) == sizeof(int), "C enums are int-sized");
  int v;
  std::memcpy(&v, e, sizeof v);
  return v;
}

// The Format for a GGML type id; LOWBIT_ERROR_NOT_FOUND for one lowbit does not implement.
Format to_format(lowbit_format id);

// Elements a rows x cols matrix with rows `stride` apart spans (0 when rows is 0), after
// checking rows >= 0, cols >= 1 and stride >= cols (stride 0 meaning cols, written back).
size_t matrix_span(const char* what, int64_t rows, int64_t cols, int64_t& stride);

// A buffer of `have` elements or bytes where `need` are required: BUFFER_TOO_SMALL.
void check_size(const char* what, size_t have, size_t need, const char* unit);

// An optional per-column vector: NULL with len 0, or exactly `cols` entries.
void check_optional_vector(const char* what, const float* p, size_t len, int64_t cols);

// a * b with an overflow check (LOWBIT_ERROR_INVALID_ARGUMENT naming `what`).
size_t checked_mul(size_t a, size_t b, const char* what);

}  // namespace lowbit_capi
