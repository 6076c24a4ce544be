#include "io/files.h"

#include <filesystem>
#include <system_error>

namespace gradfit::io {

bool same_file(const std::string& a, const std::string& b) {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::path resolved_a = fs::weakly_canonical(a, error);
  if (error) return false;
  const fs::path resolved_b = fs::weakly_canonical(b, error);
  if (error) return false;
  if (resolved_a == resolved_b) return true;
  const bool equivalent = fs::equivalent(a, b, error);  // an error: one of them does not exist
  return !error && equivalent;
}

}  // namespace gradfit::io
