// Errors are values: what went wrong, in words a user can act on, and which
// class of the contract's exit codes it belongs to.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace azlb::model {

// The numeric values are the contract's exit codes.
enum class ErrorKind { Runtime = 1, Usage = 2, NotFound = 3, Conflict = 4 };

struct Error {
  ErrorKind kind;
  std::string message;
};

inline Error usage_error(std::string m) { return {ErrorKind::Usage, std::move(m)}; }
inline Error not_found(std::string m) { return {ErrorKind::NotFound, std::move(m)}; }
inline Error conflict(std::string m) { return {ErrorKind::Conflict, std::move(m)}; }
inline Error runtime_error(std::string m) { return {ErrorKind::Runtime, std::move(m)}; }

// A value or an Error. C++20 has no std::expected; this is the small part of it
// the project needs.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Ok {};
using Status = Result<Ok>;
inline Status ok() { return Ok{}; }

}  // namespace azlb::model

// Propagates an error from an expression returning Result<...>.
#define AZLB_TRY(expr)                          \
  do {                                          \
    if (auto azlb_r_ = (expr); !azlb_r_.ok())   \
      return azlb_r_.error();                   \
  } while (0)

// Binds the value of a Result to `var`, or returns its error.
#define AZLB_ASSIGN(var, expr)                  \
  auto var##_result_ = (expr);                  \
  if (!var##_result_.ok()) return var##_result_.error(); \
  auto var = std::move(var##_result_).value()
