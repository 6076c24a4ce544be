#include "common/elements.h"

#include <array>
#include <stdexcept>

namespace gradfit {
namespace {

constexpr std::array<const char*, kElements> kSymbols{
    "H",  "He", "Li", "Be", "B",  "C",  "N",  "O",  "F",  "Ne", "Na", "Mg", "Al", "Si", "P",  "S",  "Cl",
    "Ar", "K",  "Ca", "Sc", "Ti", "V",  "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se",
    "Br", "Kr", "Rb", "Sr", "Y",  "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb",
    "Te", "I",  "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er",
    "Tm", "Yb", "Lu", "Hf", "Ta", "W",  "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At",
    "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U",  "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No",
    "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og"};

}  // namespace

const char* element_symbol(int64_t number) {
  if (number < 1 || number > kElements)
    throw std::out_of_range("no element has atomic number " + std::to_string(number));
  return kSymbols[static_cast<size_t>(number - 1)];
}

int64_t element_number(const std::string& symbol) {
  for (size_t i = 0; i < kSymbols.size(); ++i)
    if (symbol == kSymbols[i]) return static_cast<int64_t>(i) + 1;
  return 0;
}

}  // namespace gradfit
