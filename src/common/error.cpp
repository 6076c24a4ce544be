#include "common/error.h"

#include <c10/util/Exception.h>

namespace gradfit {

std::string message_of(const std::exception& e) {
  std::string text;
  if (const auto* torch_error = dynamic_cast<const c10::Error*>(&e)) {
    text = torch_error->what_without_backtrace();
    text = "LibTorch: " + text.substr(0, text.find('\n'));
  } else {
    text = e.what();
  }
  return text.empty() ? "unknown error" : text;
}

}  // namespace gradfit
