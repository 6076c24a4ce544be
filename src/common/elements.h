#pragma once
// The chemical elements by atomic number and symbol (model.features atom_centered's networks, its keys and its
// messages).
#include <cstdint>
#include <string>

namespace gradfit {

inline constexpr int64_t kElements = 118;  // atomic numbers 1 to 118

// "H", "C", ... for atomic numbers 1 to 118 (throws std::out_of_range otherwise).
const char* element_symbol(int64_t number);
// The atomic number of a symbol ("H" -> 1, "Og" -> 118); 0 for anything else.
int64_t element_number(const std::string& symbol);

}  // namespace gradfit
